#pragma once
// Request-target → archive lookup path (RFC 9112 §3.2, RFC 3986 §5.2.4), and the reverse
// direction: a path percent-encoded for a Location header. The server calls normalize_target once
// per request; the archiver calls encode_path for its redirects and listings.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace kawipiko::http {

enum class target_error {
  none,
  empty,       // the target is empty
  bad_form,    // not origin-form nor http(s) absolute-form ("*", "host:80", "ftp://…", "a/b"),
               // or a raw byte that clients always percent-encode (see normalize_target)
  bad_escape,  // a '%' in the path not followed by two hex digits
  nul,         // a NUL byte in the path, raw or as "%00"
  control,     // another control byte (0x01-0x1F, 0x7F), raw anywhere or decoded in the path
  too_long,    // the normalized path does not fit in the caller's buffer
};

// Turns a request-target into the path the archive is keyed by, written to `out`, its length to
// `out_size` (0 on error). Returns target_error::none on success. noexcept, no allocation.
//
// - Forms: origin-form ("/a/b?q") and absolute-form with scheme http or https in any case
//   ("HTTP://host:80/a?q"); the authority must not be empty and is otherwise not interpreted
//   here (virtual hosts are the caller's business); "http://host" with no path means "/".
//   Anything else, asterisk-form and authority-form included, is bad_form.
// - The query ('?' onwards) and a fragment ('#' onwards, which clients should not send) are
//   dropped without decoding; they are only checked for raw control bytes (control / nul) and
//   for raw space, '"', '<' and '>' (bad_form), which no client leaves unencoded in a query.
// - Path bytes, raw: control bytes give control (NUL gives nul); space, '"', '<', '>', '\\',
//   '`', '{', '}' and bytes >= 0x80 give bad_form: browsers (WHATWG URL) always percent-encode
//   these in a path ('\\' they turn into '/'), so a raw one comes from a broken or hostile
//   client. Raw '|', '^', '[' and ']' are accepted because browsers do send them unencoded.
// - Then the path is percent-decoded (hex in either case), BEFORE dot-segment removal: "%2e%2e"
//   is a ".." segment and "%2F" a real '/' separator. The archive is keyed by decoded paths, so
//   this is the only reading that lets "/a%2Fb" find "/a/b"; and since there is no filesystem
//   under the archive, a ".." cannot escape anything: above the root it stays at the root.
//   A decoded NUL gives nul, another decoded control byte control. Decoded bytes >= 0x80 are
//   kept as they are (UTF-8 file names).
// - Dot segments are removed (RFC 3986 §5.2.4), runs of '/' are folded into one, and a trailing
//   '/' is kept when the decoded path had one or ended in "/." or "/..". The result always
//   starts with '/'.
// - The first offending byte, left to right, decides the error.
// - too_long when `out` cannot hold the result (or an intermediate state of it: a segment later
//   removed by ".." needs room too). A buffer at least as long as the target never gives it.
[[nodiscard]] target_error normalize_target(std::string_view target, std::span<char> out,
                                            std::size_t& out_size) noexcept;

// Percent-encodes `path` for a Location header or a link: keeps ALPHA DIGIT "-._~" "/" and
// "!$&'()*+=:@", encodes every other byte as %XX (upper-case hex) — controls, space, '%', '"',
// '<', '>', '\\', '^', '`', '{', '|', '}', '?', '#', '[', ']', ',', ';' and bytes >= 0x80. (',' and
// ';' are encoded because some intermediaries split header values on them; the server decodes
// before lookup, so the encoded form finds the same file.) For the archiver, a cold path: throws
// std::bad_alloc only.
[[nodiscard]] std::string encode_path(std::string_view path);

// Whether encode_path keeps the byte `c` raw: for callers that encode byte by byte (the redirect
// matcher substituting values into a Location). noexcept.
[[nodiscard]] bool is_kept_by_encode_path(unsigned char c) noexcept;

}  // namespace kawipiko::http
