"""Tools a model may call during a reply: each registered once (tools/registry.py) with a
name, a description, a JSON schema for its input and an async function."""
