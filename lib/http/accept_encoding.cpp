#include "http/accept_encoding.hpp"

#include <algorithm>
#include <cstddef>

#include "http/syntax.hpp"

namespace kawipiko::http {
namespace {

using syntax::iequals;
using syntax::is_token_char;
using syntax::to_lower;
using syntax::trim;

// qvalue (RFC 9110 §12.4.2) in thousandths, or -1 when malformed.
constexpr int parse_qvalue(std::string_view text) noexcept {
  if (text.empty() || (text[0] != '0' && text[0] != '1')) return -1;
  const bool is_one = text[0] == '1';
  if (text.size() == 1) return is_one ? 1000 : 0;
  if (text[1] != '.' || text.size() > 5) return -1;
  int value = 0;
  int scale = 100;
  for (const char c : text.substr(2)) {
    if (c < '0' || c > '9' || (is_one && c != '0')) return -1;
    value += (c - '0') * scale;
    scale /= 10;
  }
  return is_one ? 1000 : value;
}

// Weights doubled (0..2000) so that an unnamed identity can sit below every named weight (1);
// -1 means "not named".
struct weights {
  int identity = -1;
  int gzip = -1;
  int br = -1;
  int any = -1;
};

// Reads one list element ("gzip", "br ; q=0.5"); a malformed one changes nothing.
void read_element(std::string_view element, weights& named) noexcept {
  element = trim(element);
  std::size_t token_size = 0;
  while (token_size < element.size() && is_token_char(element[token_size])) ++token_size;
  if (token_size == 0) return;
  const std::string_view token = element.substr(0, token_size);

  int q = 1000;
  std::string_view rest = trim(element.substr(token_size));
  if (!rest.empty()) {
    if (rest.front() != ';') return;
    rest = trim(rest.substr(1));
    if (rest.empty() || to_lower(rest.front()) != 'q') return;
    rest = trim(rest.substr(1));
    if (rest.empty() || rest.front() != '=') return;
    q = parse_qvalue(trim(rest.substr(1)));
    if (q < 0) return;
  }

  int* slot = nullptr;
  if (iequals(token, "gzip") || iequals(token, "x-gzip")) {
    slot = &named.gzip;
  } else if (iequals(token, "br")) {
    slot = &named.br;
  } else if (iequals(token, "identity")) {
    slot = &named.identity;
  } else if (token == "*") {
    slot = &named.any;
  } else {
    return;  // a coding we never store
  }
  *slot = std::max(*slot, q * 2);
}

}  // namespace

coding pick_encoding(std::string_view accept_encoding, bool header_present,
                     encoding_set available) noexcept {
  if (!header_present) {
    if (available.identity) return coding::identity;
    if (available.br) return coding::br;
    if (available.gzip) return coding::gzip;
    return coding::none;
  }

  weights named;
  while (true) {
    const std::size_t comma = accept_encoding.find(',');
    read_element(accept_encoding.substr(0, comma), named);
    if (comma == std::string_view::npos) break;
    accept_encoding.remove_prefix(comma + 1);
  }

  const int any = named.any;
  const int br = named.br >= 0 ? named.br : std::max(any, 0);
  const int gzip = named.gzip >= 0 ? named.gzip : std::max(any, 0);
  const int identity = named.identity >= 0 ? named.identity : any >= 0 ? any : 1;

  // Strictly greater, in preference order, so that ties go br, gzip, identity.
  coding best = coding::none;
  int best_weight = 0;
  if (available.br && br > best_weight) {
    best = coding::br;
    best_weight = br;
  }
  if (available.gzip && gzip > best_weight) {
    best = coding::gzip;
    best_weight = gzip;
  }
  if (available.identity && identity > best_weight) best = coding::identity;
  return best;
}

}  // namespace kawipiko::http
