#pragma once
// Content-Type for a published file: a compiled-in table of the web's common types by extension
// (case-insensitive), `; charset=utf-8` on text types, and for unknown extensions a small sniff of
// the content (text vs binary). Also whether a type is already compressed (not worth gzip/br).

#include <string_view>

namespace kawipiko::http {

struct content_type {
  std::string_view value;  // full header value, e.g. "text/html; charset=utf-8"
  bool compressible;       // false for png, jpg, gif, webp, avif, woff2, zip, gz, br, mp3, ...
};

// The type for file `name` (a file name or path; only the part after the last '/' and last '.'
// counts; leading dots belong to the name, so ".htaccess" has no extension). `head` is the start of
// the content (up to 1024 bytes are looked at), used only when the extension is unknown or absent:
// valid UTF-8 without NUL/control bytes (other than \t \n \r \f and ESC; DEL counts as control)
// gives "text/plain; charset=utf-8" (so does an empty head), anything else
// "application/octet-stream"; a sequence cut by the 1024-byte limit is not held against the text.
// `value` points to static storage. Allocates nothing, uses no locale; thread-safe.
[[nodiscard]] content_type content_type_for(std::string_view name, std::string_view head) noexcept;

}  // namespace kawipiko::http
