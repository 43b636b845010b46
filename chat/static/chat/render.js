// Markdown for streaming text, with the same rules as the server (chat/rendering.py):
// raw HTML off, then an allow-list sanitizer; only http(s) and mailto links.
(function () {
  "use strict";
  const md = window.markdownit("default", { html: false, linkify: false, typographer: false });
  // A table column's alignment, as a class (the CSP refuses style attributes), as the server.
  md.core.ruler.push("align_by_class", (state) => {
    for (const token of state.tokens) {
      if (token.type !== "th_open" && token.type !== "td_open") continue;
      const style = token.attrGet("style");
      if (style === null) continue;
      token.attrs = token.attrs.filter(([name]) => name !== "style");
      const found = /text-align:\s*(left|center|right)/.exec(style);
      if (found) token.attrSet("class", `align-${found[1]}`);
    }
  });
  const ALLOWED_TAGS = ["p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a",
    "table", "thead", "tbody", "tr", "th", "td"];
  const ALLOWED_ATTR = ["href", "title", "start", "class"];
  window.DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A") node.setAttribute("rel", "noopener noreferrer nofollow");
    // Code blocks and tables scroll inside the message: reachable by keyboard.
    if (node.tagName === "PRE" || node.tagName === "TABLE") node.setAttribute("tabindex", "0");
  });
  window.renderMarkdown = function (text) {
    return window.DOMPurify.sanitize(md.render(text), {
      ALLOWED_TAGS, ALLOWED_ATTR, ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
    });
  };
})();
