#include "archive/redirect_rules.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <utility>

#include "base/error.hpp"
#include "http/syntax.hpp"
#include "http/target.hpp"

namespace kawipiko::archive {

namespace {

namespace syntax = http::syntax;

constexpr unsigned allowed_statuses[] = {200, 301, 302, 303, 307, 308, 404};

// Netlify's conditions on the visitor, which a static server cannot evaluate.
constexpr std::string_view visitor_conditions[] = {"Country", "Language", "Role", "Cookie"};

bool is_absolute_url(std::string_view text) noexcept {
  return syntax::istarts_with(text, "http://") || syntax::istarts_with(text, "https://");
}

// The words of a line, up to a word starting with '#'.
std::vector<std::string_view> words_of(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    if (syntax::is_ows(line[i])) {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < line.size() && !syntax::is_ows(line[end])) ++end;
    const std::string_view word = line.substr(i, end - i);
    if (word.front() == '#') break;
    words.push_back(word);
    i = end;
  }
  return words;
}

// A query condition comes between `from` and `to`: a word with '=' that is not a path or a URL.
bool is_condition_word(std::string_view word) noexcept {
  return word.find('=') != std::string_view::npos && word.front() != '/' && !is_absolute_url(word);
}

// Reads the rules of one file, line by line; every refusal names the file and the line.
class redirects_reader {
 public:
  explicit redirects_reader(std::string_view file) : file_(file) {}

  std::vector<redirect_rule> read(std::string_view text) const {
    std::vector<redirect_rule> rules;
    for_each_line(text, [&](std::string_view line, std::size_t number) {
      const auto words = words_of(line);
      if (!words.empty()) rules.push_back(read_rule(words, number));
    });
    return rules;
  }

 private:
  [[noreturn]] void fail(std::size_t line, const std::string& reason) const {
    throw rules_error(file_, line, reason);
  }

  redirect_rule read_rule(const std::vector<std::string_view>& words, std::size_t line) const {
    redirect_rule rule;
    rule.line = line;
    located_pattern from = parse_located_pattern(words[0], file_, line);
    rule.host = std::move(from.host);
    rule.from = std::move(from.path);
    std::size_t i = 1;
    for (; i < words.size() && is_condition_word(words[i]); ++i) {
      rule.query.push_back(read_condition(words[i], line));
    }
    if (i == words.size()) fail(line, "a rule needs 'from' and 'to'");
    rule.to = read_to(words[i++], line);
    if (i < words.size() && words[i].find('=') == std::string_view::npos) {
      read_status(words[i++], rule);
    }
    for (; i < words.size(); ++i) refuse_condition(words[i], line);
    check_rule(rule);
    return rule;
  }

  query_condition read_condition(std::string_view word, std::size_t line) const {
    const std::size_t equals = word.find('=');
    query_condition condition;
    condition.name = decode(word.substr(0, equals), line);
    const std::string_view value = word.substr(equals + 1);
    if (condition.name.empty()) fail(line, "a query condition needs a name: " + base::quote(word));
    refuse_visitor_condition(condition.name, line);
    condition.binds = value.starts_with(':');
    condition.value = condition.binds ? std::string(value.substr(1)) : decode(value, line);
    if (condition.binds && (!is_placeholder_name(condition.value) || condition.value == "splat")) {
      fail(line, "not a placeholder name: " + base::quote(value));
    }
    return condition;
  }

  void refuse_visitor_condition(std::string_view name, std::size_t line) const {
    for (const auto refused : visitor_conditions) {
      if (name == refused) {
        fail(line, "the condition '" + std::string(name) +
                       "=' needs the visitor's location, language, identity or cookies, which a "
                       "static server does not have");
      }
    }
  }

  void refuse_condition(std::string_view word, std::size_t line) const {
    const std::size_t equals = word.find('=');
    if (equals == std::string_view::npos || equals == 0) {
      fail(line, "unexpected " + base::quote(word) + " after the status");
    }
    refuse_visitor_condition(word.substr(0, equals), line);
    fail(line, "unknown condition " + base::quote(word));
  }

  std::string read_to(std::string_view word, std::size_t line) const {
    if (word.starts_with("//")) {
      fail(line, "a 'to' starting with '//' is another host: write it as an https:// URL");
    }
    if (word.front() != '/' && !is_absolute_url(word)) {
      fail(line, "'to' must be a path or an http(s) URL: " + base::quote(word));
    }
    for (std::size_t i = 0; i < word.size(); ++i) {
      if (syntax::is_control(static_cast<unsigned char>(word[i]))) {
        fail(line, "a control byte in 'to'");
      }
      if (word[i] == '%' && !syntax::is_escape_at(word, i)) {
        fail(line, "a malformed percent-escape in 'to': " + base::quote(word));
      }
    }
    std::string to;
    append_url_safe(to, word);
    return to;
  }

  void read_status(std::string_view word, redirect_rule& rule) const {
    std::string_view digits = word;
    rule.force = digits.ends_with('!');
    if (rule.force) digits.remove_suffix(1);
    unsigned status = 0;
    const bool numeric =
        digits.size() == 3 &&
        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (numeric) {
      status = static_cast<unsigned>((digits[0] - '0') * 100 + (digits[1] - '0') * 10 +
                                     (digits[2] - '0'));
    }
    if (std::find(std::begin(allowed_statuses), std::end(allowed_statuses), status) ==
        std::end(allowed_statuses)) {
      fail(rule.line, "unknown status " + base::quote(word) +
                          " (200, 301, 302, 303, 307, 308 or 404, maybe with '!')");
    }
    rule.status = status;
  }

  std::string decode(std::string_view text, std::size_t line) const {
    auto decoded = percent_decode(text);
    if (!decoded) fail(line, "a malformed percent-escape: " + base::quote(text));
    return std::move(*decoded);
  }

  // What needs the whole rule: proxies, placeholders in hosts, names `to` uses.
  void check_rule(const redirect_rule& rule) const {
    if (!rule.is_redirect() && rule.is_absolute()) {
      fail(rule.line, "a " + std::to_string(rule.status) +
                          " to another origin would be a proxy, which a static server refuses");
    }
    const auto names = capture_names(rule);
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (std::find(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(i), names[i]) !=
          names.begin() + static_cast<std::ptrdiff_t>(i)) {
        fail(rule.line, "placeholder ':" + names[i] + "' bound twice");
      }
    }
    if (names.size() > max_captures) {
      fail(rule.line, "more than " + std::to_string(max_captures) + " placeholders");
    }
    check_target(rule, names);
  }

  void check_target(const redirect_rule& rule, const std::vector<std::string>& names) const {
    const std::size_t authority_end =
        rule.is_absolute()
            ? std::min(rule.to.find_first_of("/?#", rule.to.find("//") + 2), rule.to.size())
            : 0;
    std::size_t at = 0;
    for (const auto& part : split_target(rule.to)) {
      if (part.is_placeholder) {
        if (at < authority_end) fail(rule.line, "a placeholder in the host of 'to'");
        if (std::find(names.begin(), names.end(), part.text) == names.end()) {
          fail(rule.line, "'to' uses ':" + part.text + "', which 'from' does not bind");
        }
      }
      at += part.is_placeholder ? part.text.size() + 1 : part.text.size();
    }
  }

  std::string_view file_;
};

// Where a plain redirect sends a request, as a normalized path; none for a rewrite, an absolute
// URL or a target that does not normalize.
std::optional<std::string> redirect_path(const redirect_rule& rule) {
  if (!rule.is_plain() || !rule.is_redirect() || rule.is_absolute()) return std::nullopt;
  const std::string_view target = rule.to;
  std::string path(target.size() + 1, '\0');
  std::size_t size = 0;
  const auto error =
      http::normalize_target(target, std::span<char>(path.data(), path.size()), size);
  if (error != http::target_error::none) return std::nullopt;
  path.resize(size);
  return path;
}

// For each rule, the rule its redirect leads to: the first plain rule answering the path it
// redirects to; none when it is not a plain redirect to a path, or no plain rule answers there.
std::vector<std::optional<std::size_t>> redirect_graph(const std::vector<redirect_rule>& rules) {
  std::map<std::string, std::size_t> first_rule;  // path -> the first plain rule answering it
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (!rules[i].is_plain()) continue;
    for (auto& path : plain_paths(rules[i])) first_rule.emplace(std::move(path), i);
  }
  std::vector<std::optional<std::size_t>> next(rules.size());
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const auto target = redirect_path(rules[i]);
    const auto found = target ? first_rule.find(*target) : first_rule.end();
    if (found != first_rule.end()) next[i] = found->second;
  }
  return next;
}

// The cycle of plain redirects whose first rule comes first in the file, from that rule; empty
// when there is none. Each rule leads to at most one other, so one walk from each rule not yet
// seen finds every cycle. A walk meets only rules not seen before, all of them after its start
// (every earlier rule started a walk), which makes the first cycle found the one with the
// earliest rule.
std::vector<std::size_t> first_cycle(const std::vector<std::optional<std::size_t>>& next) {
  enum class mark : std::uint8_t { unseen, on_walk, done };
  std::vector<mark> marks(next.size(), mark::unseen);
  for (std::size_t start = 0; start < next.size(); ++start) {
    std::vector<std::size_t> walk;
    std::optional<std::size_t> at = start;
    while (at && marks[*at] == mark::unseen) {
      marks[*at] = mark::on_walk;
      walk.push_back(*at);
      at = next[*at];
    }
    for (const auto index : walk) marks[index] = mark::done;
    if (!at || std::find(walk.begin(), walk.end(), *at) == walk.end()) continue;
    std::vector<std::size_t> cycle(std::find(walk.begin(), walk.end(), *at), walk.end());
    std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
    return cycle;
  }
  return {};
}

// Refuses a redirect loop among plain rules, naming the line of its first rule.
void refuse_loops(const std::vector<redirect_rule>& rules, std::string_view file) {
  const auto cycle = first_cycle(redirect_graph(rules));
  if (cycle.empty()) return;
  const auto path_of = [&](std::size_t index) {
    return base::quote(rules[index].from.literal_path());
  };
  std::string reason;
  if (cycle.size() == 1) {
    reason = path_of(cycle[0]) + " redirects to itself";
  } else {
    reason = "redirect loop:";
    for (const auto index : cycle) reason += " " + path_of(index) + " ->";
    reason += " " + path_of(cycle[0]);
  }
  throw rules_error(file, rules[cycle[0]].line, reason);
}

}  // namespace

bool redirect_rule::is_absolute() const noexcept {
  return is_absolute_url(to);
}

bool redirect_rule::is_plain() const noexcept {
  return host.empty() && query.empty() && from.is_literal();
}

bool redirect_rule::keeps_query() const noexcept {
  return query.empty() && to.find_first_of("?#") == std::string::npos;
}

std::vector<redirect_rule> parse_redirects(std::string_view text, std::string_view file) {
  auto rules = redirects_reader(file).read(text);
  refuse_loops(rules, file);
  return rules;
}

std::vector<std::string> plain_paths(const redirect_rule& rule) {
  std::string path = rule.from.literal_path();
  if (path == "/" || !rule.from.trailing_slash) return {path};
  return {path, path + "/"};
}

std::vector<target_part> split_target(std::string_view to) {
  std::vector<target_part> parts;
  bool in_query = false;
  std::string literal;
  const auto flush = [&] {
    if (!literal.empty()) parts.push_back({false, std::exchange(literal, {}), in_query});
  };
  for (std::size_t i = 0; i < to.size();) {
    const char c = to[i];
    if (c == ':') {
      std::size_t end = i + 1;
      while (end < to.size() && is_placeholder_name(to.substr(i + 1, end + 1 - (i + 1)))) ++end;
      if (end > i + 1) {
        flush();
        parts.push_back({true, std::string(to.substr(i + 1, end - (i + 1))), in_query});
        i = end;
        continue;
      }
    }
    if (!in_query && (c == '?' || c == '#')) {
      flush();
      in_query = true;
    }
    literal += c;
    ++i;
  }
  flush();
  return parts;
}

bool is_url_safe(unsigned char c) noexcept {
  if (c <= 0x20 || c >= 0x7f) return false;
  constexpr std::string_view unsafe = "\"<>\\^`{|}";
  return unsafe.find(static_cast<char>(c)) == std::string_view::npos;
}

void append_escape(std::string& out, unsigned char c) {
  constexpr char digits[] = "0123456789ABCDEF";
  out += '%';
  out += digits[c >> 4];
  out += digits[c & 0x0f];
}

void append_url_safe(std::string& out, std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (is_url_safe(c) && (c != '%' || syntax::is_escape_at(text, i))) {
      out += static_cast<char>(c);
    } else {
      append_escape(out, c);
    }
  }
}

std::vector<std::string> capture_names(const redirect_rule& rule) {
  std::vector<std::string> names;
  for (const auto& segment : rule.from.segments) {
    if (segment.kind == segment_kind::placeholder) names.push_back(segment.text);
    if (segment.kind == segment_kind::splat) names.emplace_back("splat");
  }
  for (const auto& condition : rule.query) {
    if (condition.binds) names.push_back(condition.value);
  }
  return names;
}

}  // namespace kawipiko::archive
