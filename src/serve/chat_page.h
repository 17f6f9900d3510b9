// The chat page `tandem serve` answers GET / with: one static HTML document with its CSS and
// JavaScript inline, compiled into the binary (no build step, no framework, nothing fetched from
// elsewhere). It talks to the same server's /v1/models and /v1/chat/completions (streamed).
#pragma once

#include <string_view>

namespace tandem::serve {

// The document, UTF-8; serve it as "text/html; charset=utf-8".
std::string_view chat_page_html();

}  // namespace tandem::serve
