#pragma once
// Entity-tags (RFC 9110 §8.8.3): their grammar, and the two list preconditions against a
// resource's stored ETag: If-Match (§13.1.1, strong comparison, giving 412 when it fails) and
// If-None-Match (§13.1.2, weak comparison, giving 304). Runs per request: noexcept, no allocation.

#include <string_view>

namespace kawipiko::http {

// Whether `tag` is a strong entity-tag: opaque-tag = DQUOTE *etagc DQUOTE, etagc = %x21 /
// %x23-7E / obs-text (RFC 9110 §8.8.3). The one definition of the grammar: the archive's stored
// tags, If-Match and If-None-Match elements (after "W/") and If-Range values are all checked
// with it.
[[nodiscard]] bool is_strong_etag(std::string_view tag) noexcept;

// Whether If-None-Match value `header` matches `etag`, the resource's stored tag (e.g. "\"abc\"",
// quotes included), i.e. whether a GET or HEAD gets 304.
//
// - "*" (the whole value) matches any existing resource, even with an empty `etag`.
// - Otherwise a comma-separated list of entity-tags, "\"…\"" or "W/\"…\"", whitespace tolerated
//   around the commas; commas inside a tag's quotes belong to the tag. Weak comparison: a "W/"
//   prefix is ignored on both sides and the quoted opaque-tags are compared byte for byte.
// - Malformed elements ("abc", "W/abc", "w/\"a\"", a tag with a space or a control byte, a "*"
//   inside a list) are skipped; an unterminated quote ends the list. A skipped element never
//   matches: a 200 is always correct, a wrong 304 is not.
[[nodiscard]] bool if_none_match(std::string_view header, std::string_view etag) noexcept;

// Whether If-Match value `header` matches `etag`, the resource's stored tag, i.e. whether the
// request may go on (false: 412). The list is read as for if_none_match, but the comparison is
// strong (§8.8.3.2): a weak element ("W/\"…\"") never matches, nor does a weak or empty `etag`.
// "*" (the whole value) matches any existing resource, even with an empty `etag`; the caller
// asks only for a resource that exists.
[[nodiscard]] bool if_match(std::string_view header, std::string_view etag) noexcept;

}  // namespace kawipiko::http
