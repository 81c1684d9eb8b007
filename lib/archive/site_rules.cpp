#include "archive/site_rules.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include "archive/redirect_matcher.hpp"
#include "archive/schema.hpp"
#include "base/error.hpp"
#include "base/mapped_file.hpp"
#include "http/syntax.hpp"
#include "http/target.hpp"

namespace kawipiko::archive {

namespace {

namespace syntax = http::syntax;
namespace flags = schema::entry_flags;

std::string read_text(const std::string& file) {
  if (file.empty()) return {};
  const base::mapped_file mapped(file, base::mapped_file::mode::in_memory);
  const auto bytes = mapped.bytes();
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// The security headers the server adds, and the entry flag that leaves each out.
struct owned_default {
  std::string_view name;
  unsigned flag;
};
constexpr owned_default security_defaults[] = {
    {"X-Content-Type-Options", flags::own_content_type_options},
    {"Referrer-Policy", flags::own_referrer_policy},
    {"X-Frame-Options", flags::own_frame_options},
    {"Strict-Transport-Security", flags::own_hsts},
};

unsigned security_flag(std::string_view name) noexcept {
  for (const auto& known : security_defaults) {
    if (syntax::iequals(name, known.name)) return known.flag;
  }
  return 0;
}

// The decoded path of a target ("/a%20b?x" -> "/a b"), or none when it is not one.
std::optional<std::string> target_path(std::string_view target) {
  std::string path(std::max<std::size_t>(target.size(), 1), '\0');
  std::size_t size = 0;
  if (http::normalize_target(target, path, size) != http::target_error::none) return std::nullopt;
  path.resize(size);
  return path;
}

// The route of `path` that serves a file (not a redirect), or of its folder when `path` has
// no slash at its end and the folder has an index.
const route* file_route(const route_map& routes, const std::string& path) {
  for (const auto& candidate : {path, path + "/"}) {
    const auto found = routes.find(candidate);
    if (found != routes.end() && !found->second.is_redirect()) return &found->second;
    if (path.ends_with('/')) break;
  }
  return nullptr;
}

std::vector<redirect_rule> parse_file(const std::string& file) {
  if (file.empty()) return {};
  return parse_redirects(read_text(file), file);
}

header_rules parse_headers(const std::string& file) {
  if (file.empty()) return {};
  return header_rules(read_text(file), file);
}

}  // namespace

site_rules::site_rules(const std::string& redirects_file, const std::string& headers_file,
                       std::string_view host)
    : redirects_file_(redirects_file),
      headers_file_(headers_file),
      host_(host),
      rules_(parse_file(redirects_file)),
      headers_(parse_headers(headers_file)) {
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    if (!rules_[i].force) continue;
    forced_.push_back(i);
    if (!rules_[i].host.empty() || !rules_[i].query.empty()) conditional_forced_ = true;
  }
  for (const auto& block : headers_.blocks()) {
    if (block.host.empty() || block.host == host_) continue;
    throw rules_error(headers_file_, block.line,
                      "a block for the host " + base::quote(block.host) +
                          (host_.empty() ? std::string(" needs --host-folders (an entry is the "
                                                       "same for every host of an archive)")
                                         : " in the folder of " + base::quote(host_)));
  }
}

route site_rules::answer_of(const redirect_rule& rule, std::string_view target,
                            const route_map& archived) const {
  route answer;
  answer.status = rule.status;
  answer.rule_line = rule.line;
  if (rule.is_redirect()) {
    answer.location = std::string(target);
    answer.keeps_query = rule.keeps_query();
    return answer;
  }
  const auto path = target_path(target);
  const route* file = path ? file_route(archived, *path) : nullptr;
  if (file == nullptr) {
    throw rules_error(redirects_file_, rule.line,
                      "the " + std::to_string(rule.status) + " rewrite's target " +
                          base::quote(target) + " is not a file of the site");
  }
  answer.item = file->item;
  return answer;
}

// Each archived path takes the answer of the first forced rule that matches it, as the matcher
// itself finds it (no host, no query: none of these rules has either).
void site_rules::fold_forced(route_map& routes, const route_map& archived) const {
  std::vector<redirect_rule> forced;
  for (const auto i : forced_) forced.push_back(rules_[i]);
  const auto blob = compile_matcher(forced);
  const redirect_matcher matcher(blob);
  redirect_match match;
  for (auto& [path, answer] : routes) {
    if (!answer.archived || !matcher.match({{}, path, {}}, match)) continue;
    const redirect_rule& rule = rules_[forced_[match.rule]];
    if (rule.is_redirect() && !rule.is_absolute() && target_path(match.target) == path) {
      throw rules_error(redirects_file_, rule.line,
                        "redirects " + base::quote(path) + " to itself");
    }
    answer = answer_of(rule, match.target, archived);
    answer.archived = true;
  }
}

// The archived paths a forced rule could match, whatever the request's host and query, are
// flagged: the server tries the forced rules there first.
void site_rules::flag_forced(route_map& routes) const {
  std::vector<redirect_rule> forced;
  for (const auto i : forced_) {
    forced.push_back(rules_[i]);
    forced.back().host.clear();
  }
  const auto blob = compile_matcher(forced);
  const redirect_matcher matcher(blob);
  for (auto& [path, answer] : routes) {
    if (!answer.archived) continue;
    if (const auto first = matcher.first_path_match(path)) {
      answer.forced_rules = true;
      answer.rule_line = rules_[forced_[*first]].line;
    }
  }
}

rule_blobs site_rules::apply_redirects(route_map& routes) const {
  rule_blobs blobs;
  if (rules_.empty()) return blobs;
  const route_map archived = routes;  // rewrites serve files, never another rule's answer
  if (!forced_.empty() && conditional_forced_) {
    flag_forced(routes);
    std::vector<redirect_rule> forced;
    for (const auto i : forced_) forced.push_back(rules_[i]);
    blobs.forced = compile_matcher(forced);
  } else if (!forced_.empty()) {
    fold_forced(routes, archived);
  }
  const auto kinds = classify_rules(rules_);
  std::vector<redirect_rule> patterns;
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    if (kinds[i] == rule_kind::pattern) {
      patterns.push_back(rules_[i]);
      continue;
    }
    for (const auto& path : plain_paths(rules_[i])) {
      if (routes.contains(path)) continue;  // archived (shadowing), or an earlier rule's
      routes.emplace(path, answer_of(rules_[i], rules_[i].to, archived));
    }
  }
  if (!patterns.empty()) {
    blobs.patterns = compile_matcher(patterns);
    blobs.pattern_count = patterns.size();
  }
  return blobs;
}

compiled_headers site_rules::headers_for(std::string_view path) const {
  compiled_headers out;
  if (headers_.blocks().empty()) return out;
  const path_headers given = headers_.for_path(path, host_);
  out.block_lines = given.lines;
  for (const auto& field : given.fields) {
    const std::string line = field.name + ":" + (field.value.empty() ? "" : " ") + field.value;
    if (syntax::iequals(field.name, "Cache-Control")) {
      out.has_cache_control = true;
      out.cache_control = field.value;
    } else if (syntax::iequals(field.name, "Content-Type")) {
      out.has_content_type = true;
      out.content_type = field.value;
    } else if (syntax::iequals(field.name, "Location")) {
      out.location_line = line + "\r\n";
    } else {
      out.flags |= security_flag(field.name);
      out.lines += line + "\r\n";
    }
  }
  for (const auto& name : given.removed_defaults) {
    out.drop_cache_control = out.drop_cache_control || syntax::iequals(name, "Cache-Control");
    out.drop_content_type = out.drop_content_type || syntax::iequals(name, "Content-Type");
    out.flags |= security_flag(name);
  }
  return out;
}

rules_error site_rules::oversized_block(std::string_view path,
                                        const compiled_headers& headers) const {
  std::string lines;
  for (const auto line : headers.block_lines) {
    lines += (lines.empty() ? "" : ", ") + std::to_string(line);
  }
  return rules_error(headers_file_, headers.block_lines.empty() ? 0 : headers.block_lines.front(),
                     "the headers for " + base::quote(path) + " (blocks at lines " + lines +
                         ") make its header block longer than " +
                         std::to_string(schema::max_block_size) + " bytes");
}

}  // namespace kawipiko::archive
