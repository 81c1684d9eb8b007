#pragma once
// Content negotiation on Accept-Encoding (RFC 9110 §12.5.3): which of a resource's stored
// variants (identity, gzip, br) to send. Runs per request: noexcept, no allocation.

#include <string_view>

namespace kawipiko::http {

// The variants a resource has in the archive.
struct encoding_set {
  bool identity = true;
  bool gzip = false;
  bool br = false;
};

enum class coding { identity, gzip, br, none };

// Picks the variant to send for a request whose Accept-Encoding value is `accept_encoding`
// (`header_present` false when the request has no such field; several fields are the caller's to
// join with ", ").
//
// - No header: identity when available (anything is acceptable, but a client that says nothing
//   most likely decodes nothing); otherwise br, then gzip.
// - The value is a comma-separated list of codings, each with an optional weight ";q=" (0 to 1,
//   up to three decimals), tokens compared case-insensitively, whitespace tolerated around ',' ';'
//   and '='. "x-gzip" means gzip. Unknown codings are ignored. A malformed element (bad q, other
//   parameters, junk after the token) is ignored as if absent — rather than read as q=0 — so a
//   typo never turns into a refusal the client did not clearly state. When a coding is named more
//   than once, its highest weight counts (the answer does not depend on the order).
// - "*" gives its weight to gzip and br when they are not named, and to identity when it is not
//   named. identity named nowhere and not covered by "*" is acceptable with a weight below every
//   named one: a client that names any available coding gets it; "identity;q=0" or "*;q=0"
//   (identity not named) excludes identity. An empty value (or one with no valid element) thus
//   leaves identity only.
// - q=0 excludes a coding. Among the available codings with a positive weight the highest wins;
//   ties go br, then gzip, then identity.
// - coding::none when no available variant is acceptable. The caller decides: RFC 9110 allows
//   sending identity anyway (the usual choice) or answering 406.
[[nodiscard]] coding pick_encoding(std::string_view accept_encoding, bool header_present,
                                   encoding_set available) noexcept;

}  // namespace kawipiko::http
