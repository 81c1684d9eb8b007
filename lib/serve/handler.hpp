#pragma once
// The I/O-free heart of the server: one parsed request in, one response described to a
// response_writer (response.hpp), which the protocol serializes. It looks the path up in the
// site (trying the site's `_redirects` pattern rules when it misses, before the fallbacks, and
// its forced rules first on the entries flagged for them), negotiates the encoding, evaluates
// If-Match, If-None-Match, Range and If-Range, and describes the status, the archive's precomputed
// header lines, the few made-up fields and the body slices. It knows no protocol: HTTP/1.1 and
// HTTP/2 serialize the same description. No allocation, no exception, no system call.

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>

#include "archive/compress.hpp"
#include "archive/redirect_matcher.hpp"
#include "serve/certificate_names.hpp"
#include "serve/host_table.hpp"
#include "serve/response.hpp"
#include "serve/site.hpp"

namespace kawipiko::serve {

// The request method as far as the answer goes. "Known" means in Beast's verb table, a subset of
// the IANA method registry (RFC 9110 §16.1): a known method other than GET and HEAD is one this
// server refuses to apply to its resources (405 with Allow, §15.5.6); any other token, a
// lower-case "get" included (methods are case-sensitive, §9.1), is one it does not implement (501,
// §15.6.2).
enum class method {
  get,
  head,
  other,    // known, not allowed: 405
  unknown,  // not known: 501
};

// A parsed request; views into the connection's input. The handler reads the method, the target
// and the fields; version and keep_alive are HTTP/1.1's, for its protocol code.
struct request {
  method verb = method::get;
  std::string_view method_token;  // the method as sent (for the access log)
  std::string_view target;
  unsigned version = 11;   // 10 or 11 (a later 1.x is answered as 11)
  bool keep_alive = true;  // as the request asked (version and Connection)
  std::string_view host;   // Host (or :authority); HTTP/1.0 may have none
  bool has_accept_encoding = false;
  std::string_view accept_encoding;
  bool has_if_match = false;  // the first If-Match field
  std::string_view if_match;
  bool has_if_none_match = false;
  std::string_view if_none_match;
  bool has_range = false;  // exactly one Range field (several: ignored, as RFC allows)
  std::string_view range;
  bool has_if_range = false;
  std::string_view if_range;
  // For the access log only (the first of each; HTTP/2 keeps them only while it logs).
  std::string_view referer;
  std::string_view user_agent;
};

// Whether an answer carries its body: a HEAD request gets the header only.
enum class body_mode { with_body, head_only };

struct response_info {
  unsigned status = 0;
  archive::encoding coding = archive::encoding::identity;
  std::uint64_t body_bytes = 0;
  bool corrupt = false;  // a corrupt archive record was met (500): worth a log line
  // The site that answered, for the counters and the access log: its place in site_set::hosts,
  // or -1 for the default one (and for an answer no site gave); its generation, 0 for none.
  int host = -1;
  std::uint64_t generation = 0;
};

// How the answers of one listener look, besides the archive's own header blocks.
struct answer_settings {
  bool security_headers = true;  // X-Content-Type-Options, Referrer-Policy, X-Frame-Options
  bool hsts = false;             // Strict-Transport-Security (over TLS, --security-headers-tls)
  // Non-zero: every request is answered with a 308 to the same target on https at this port
  // (the plain listener with --https-redirect).
  unsigned https_port = 0;
};

// The room a handler keeps for the Location or path a `_redirects` pattern rule makes: more than
// a redirect may copy (max_copied_value), so that a longer one is refused without allocating.
inline constexpr std::size_t max_rule_target = 2 * max_copied_value;

class handler {
 public:
  // Answers from `s` alone, whatever the host (tests, fuzzing). `s` must outlive the handler.
  handler(const site& s, const answer_settings& settings);
  // Answers from the sites of `sites`, chosen by the request's host. Throws std::bad_alloc.
  handler(const site_set& sites, const answer_settings& settings);

  // Answers from `sites` from now on (a reload); they must outlive their use.
  void use(const site_set& sites) noexcept { sites_ = &sites; }

  // Describes the response to `req` to `w`. `tls`: the certificate the request's TLS connection
  // got (null for plain connections): a host that it does not cover and another certificate does
  // gets 421.
  response_info respond(const request& req, response_writer& w,
                        const served_certificate* tls = nullptr) noexcept;

  // A short text answer for a request that could not be parsed or is refused (400, 404, 405,
  // 412, 413, 414, 431, 500, 501, 505…).
  response_info respond_error(unsigned status, body_mode body, response_writer& w) noexcept;

  // The site the answer being described comes from (valid from the start of respond() until the
  // next; HTTP/2's writer finds the header lines of its blocks there).
  [[nodiscard]] const site& answering() const noexcept { return *answering_; }

 private:
  std::shared_ptr<const site_set> own_;  // the one-site set of the first constructor
  const site_set* sites_;
  const site* answering_ = nullptr;
  answer_settings settings_;
  std::array<char, 8192> path_{};
  // A pattern rule's match, its target's room kept from one request to the next (no allocation
  // unless a Location grows past it), and the normalized path of a rewrite's target.
  archive::redirect_match match_;
  std::array<char, 8192> rewrite_path_{};
};

}  // namespace kawipiko::serve
