// Fuzz target: the `_redirects` and `_headers` parsers and the serve-time redirect matcher's
// reader. The first byte picks what the rest is (its value modulo 4; the seeds use '0'..'3'):
//   0  a `_redirects` text
//   1  a `_headers` text
//   2  a `_redirects` text, a NUL, then damage to its compiled matcher:
//      (offset:2 bytes little-endian, value:1 byte)... each sets the byte at offset (modulo the
//      blob's size) to value
//   3  a compiled matcher's bytes, as the archive would hold them
// Parsing may throw rules_error only. Whatever parses must compile into a blob the reader
// accepts, in which every plain rule answers its own paths unless an earlier rule does, and
// classify_rules agrees on which. A blob the reader accepts, damaged or not, gives only
// targets that are safe in a Location header and start as a path or an http(s) URL. Headers
// given for a path have token names the server does not own and values without controls.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "archive/header_rules.hpp"
#include "archive/redirect_matcher.hpp"
#include "archive/redirect_rules.hpp"
#include "fuzz_support.hpp"
#include "http/syntax.hpp"

namespace archive = kawipiko::archive;
namespace syntax = kawipiko::http::syntax;

namespace {

// Paths every matcher is asked about, besides those the rules name.
constexpr std::string_view probe_paths[] = {
    "/", "/a", "/a/", "/a/b", "/en/x/", "/news/2004/01/story", "/store", "/caf\xc3\xa9 s/%41"};

bool is_safe_target(std::string_view target) {
  const bool bytes_ok = std::all_of(target.begin(), target.end(), [](char c) {
    return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
  });
  const bool is_path = target.starts_with('/') && !target.starts_with("//");
  const bool is_url =
      syntax::istarts_with(target, "http://") || syntax::istarts_with(target, "https://");
  return bytes_ok && (is_path || is_url);
}

void probe(const archive::redirect_matcher& matcher, std::string_view path) {
  archive::redirect_match out;
  for (const std::string_view query : {std::string_view{}, std::string_view("id=1&q=a%26b+c")}) {
    for (const std::string_view host :
         {std::string_view{}, std::string_view("Old.Example.com:8080")}) {
      if (!matcher.match({host, path, query}, out)) continue;
      KAWIPIKO_FUZZ_CHECK(out.rule < matcher.size());
      KAWIPIKO_FUZZ_CHECK(is_safe_target(out.target));
      const auto first = matcher.first_path_match(path, host);
      KAWIPIKO_FUZZ_CHECK(first && *first <= out.rule);
    }
  }
}

void probe_all(const archive::redirect_matcher& matcher,
               const std::vector<archive::redirect_rule>& rules) {
  for (const auto path : probe_paths) probe(matcher, path);
  for (const auto& rule : rules) {
    if (rule.from.is_literal()) probe(matcher, rule.from.literal_path());
  }
}

// Parsed rules compile, open, and answer their plain paths as classify_rules says.
void check_redirects(std::string_view text, std::span<const std::uint8_t> damage) {
  std::vector<archive::redirect_rule> rules;
  try {
    rules = archive::parse_redirects(text, "_redirects");
  } catch (const archive::rules_error&) {
    return;
  }
  const auto kinds = archive::classify_rules(rules);
  KAWIPIKO_FUZZ_CHECK(kinds.size() == rules.size());
  std::vector<std::byte> blob = archive::compile_matcher(rules);
  {
    const archive::redirect_matcher matcher(blob);  // throws: a fuzz crash, as it should
    KAWIPIKO_FUZZ_CHECK(matcher.size() == rules.size());
    for (std::size_t i = 0; i < rules.size(); ++i) {
      KAWIPIKO_FUZZ_CHECK(is_safe_target(rules[i].to));
      if (!rules[i].is_plain()) continue;
      for (const auto& path : archive::plain_paths(rules[i])) {
        archive::redirect_match out;
        KAWIPIKO_FUZZ_CHECK(matcher.match({{}, path, {}}, out) && out.rule <= i);
        // A plain rule some earlier rule may answer for is matched at serve time.
        if (out.rule < i && !rules[out.rule].is_plain()) {
          KAWIPIKO_FUZZ_CHECK(kinds[i] == archive::rule_kind::pattern);
        }
      }
    }
    probe_all(matcher, rules);
  }
  if (damage.empty() || blob.empty()) return;
  for (std::size_t at = 0; damage.size() - at >= 3; at += 3) {
    const std::size_t offset = damage[at] | (std::size_t{damage[at + 1]} << 8);
    blob[offset % blob.size()] = std::byte{damage[at + 2]};
  }
  std::optional<archive::redirect_matcher> damaged;
  try {
    damaged.emplace(blob);
  } catch (const std::runtime_error&) {
    return;
  }
  probe_all(*damaged, rules);
}

void check_headers(std::string_view text) {
  std::optional<archive::header_rules> rules;
  try {
    rules.emplace(text, "_headers");
  } catch (const archive::rules_error&) {
    return;
  }
  std::vector<std::string> paths(std::begin(probe_paths), std::end(probe_paths));
  for (const auto& block : rules->blocks()) {
    if (block.path.is_literal()) paths.push_back(block.path.literal_path());
  }
  for (const auto& path : paths) {
    archive::path_headers given;
    try {
      given = rules->for_path(path, "old.example.com");
    } catch (const archive::rules_error&) {
      continue;  // a combined value past the limit
    }
    for (const auto& field : given.fields) {
      KAWIPIKO_FUZZ_CHECK(!field.name.empty() && field.value.size() <= archive::max_value_size);
      for (const char c : field.value) {
        KAWIPIKO_FUZZ_CHECK(c == '\t' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
      }
    }
  }
}

void check_blob(std::span<const std::uint8_t> bytes) {
  // A heap copy of exactly the blob's size, so that ASan sees a read past its end.
  const std::vector<std::byte> blob(
      reinterpret_cast<const std::byte*>(bytes.data()),
      reinterpret_cast<const std::byte*>(bytes.data()) + bytes.size());
  std::optional<archive::redirect_matcher> matcher;
  try {
    matcher.emplace(blob);
  } catch (const std::runtime_error&) {
    return;
  }
  probe_all(*matcher, {});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const std::uint8_t> rest(data + 1, size - 1);
  const std::string_view text(reinterpret_cast<const char*>(rest.data()), rest.size());
  switch (data[0] % 4) {
    case 0:
      check_redirects(text, {});
      break;
    case 1:
      check_headers(text);
      break;
    case 2: {
      const std::size_t nul = std::min(text.find('\0'), text.size());
      check_redirects(text.substr(0, nul), rest.subspan(std::min(nul + 1, rest.size())));
      break;
    }
    default:
      check_blob(rest);
  }
  return 0;
}
