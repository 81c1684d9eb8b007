#include "archive/builder.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "archive/entry.hpp"
#include "archive/pipeline.hpp"
#include "archive/reader.hpp"
#include "archive/schema.hpp"
#include "archive/site_rules.hpp"
#include "archive/source.hpp"
#include "base/atomic_file.hpp"
#include "base/error.hpp"
#include "base/mapped_file.hpp"
#include "cdb/format.hpp"
#include "cdb/writer.hpp"
#include "http/mime.hpp"
#include "http/target.hpp"

namespace kawipiko::archive {

namespace {

using base::throw_error;

// Index files of a folder, by priority; and the suffixes an extension-less alias strips. These
// are the original tool's lists.
constexpr std::string_view index_extensions[] = {"html", "htm",  "xhtml", "xht",
                                                 "txt",  "json", "xml"};
constexpr std::string_view strip_extensions[] = {"html", "htm", "xhtml", "xht", "txt"};

// The rules files, at the top of a site: read by the archiver, never served.
constexpr std::string_view redirects_name = "/_redirects";
constexpr std::string_view headers_name = "/_headers";

// ---- what the phases hand each other ------------------------------------------------------------

// Item indexes by request path ("/a/b.html") or by folder ("/a/").
using item_map = std::map<std::string, std::size_t>;

// What the target path holds before the build.
struct target_state {
  bool exists = false;
  skip_identity identity;  // left out of the walk: the target may sit inside the sources
};

// What is stored, known before anything is read: one work item per source file (then one per
// generated listing), every site's, in storage order.
struct work_list {
  std::vector<work_item> items;
  std::uint64_t source_bytes = 0;
};

// What one site's items answer: the request paths and folders they serve, by item index.
struct published_items {
  item_map by_path;      // published path -> item
  item_map wildcards;    // folder -> its `_wildcard.*` file
  item_map error_pages;  // folder -> its `_404.html` or `404.html`
};

// One site of the archive: the whole of the sources, or (host folders) one host's folder, whose
// keys carry the host in front.
struct site_plan {
  std::string host;  // empty without host folders
  source_tree tree;  // without the rules files
  site_rules rules;
  published_items published;
  item_map folder_entries;  // folder -> its index file or generated listing
};

// Where a variant of an item ended up in the archive.
struct stored_variant {
  encoding coding;
  std::uint32_t position;
  std::uint32_t length;
  std::string etag;
};

struct stored_item {
  std::string content_type;
  std::vector<stored_variant> variants;  // in the schema's order: identity, gzip, br
};

// What writing the sites' routes produced.
struct written_routes {
  std::string paths_listing;  // every path key written, one per line, in order
  std::uint64_t paths = 0;
  std::uint64_t redirects = 0;
  std::uint64_t pattern_rules = 0;  // left to the serve-time matcher, every site's
  std::size_t fallback_depth = 0;   // the reader walks from there: the deepest level plus one
};

struct header_options {
  bool etag;
  std::string_view cache_control;  // empty: none
};

// ---- names, listings, entry values -------------------------------------------------------------

// Splits "/a/b.html" into folder "/a/" and name "b.html".
std::pair<std::string_view, std::string_view> split_path(std::string_view path) {
  const auto slash = path.rfind('/');
  return {path.substr(0, slash + 1), path.substr(slash + 1)};
}

bool is_wildcard_name(std::string_view name) {
  return name.starts_with("_wildcard.");
}
bool is_error_page_name(std::string_view name) {
  return name == "_404.html" || name == "404.html";
}

std::string html_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A plain HTML listing of one folder: its sub-folders, then its files, each sorted.
std::string folder_listing(std::string_view folder, const std::vector<std::string>& subfolders,
                           const std::vector<std::pair<std::string, std::uint64_t>>& files) {
  const std::string title = html_escape(folder);
  std::string html =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width\"><title>Index of " +
      title + "</title></head>\n<body><h1>Index of " + title + "</h1>\n<ul>\n";
  if (folder != "/") html += "<li><a href=\"../\">../</a></li>\n";
  for (const auto& name : subfolders) {
    html += "<li><a href=\"" + html_escape(http::encode_path(name)) + "/\">" + html_escape(name) +
            "/</a></li>\n";
  }
  for (const auto& [name, size] : files) {
    html += "<li><a href=\"" + html_escape(http::encode_path(name)) + "\">" + html_escape(name) +
            "</a> (" + std::to_string(size) + " bytes)</li>\n";
  }
  html += "</ul></body></html>\n";
  return html;
}

// The header block of one variant: the 304 prefix (ETag, Cache-Control, Vary, the `_headers`
// lines), then Content-Type and Content-Encoding (the 206 prefix), then Content-Length.
variant_spec resource_variant(const stored_variant& stored, const stored_item& item, bool multi,
                              const header_options& opt, const compiled_headers& own) {
  variant_spec spec{stored.coding, stored.position, stored.length, {}, 0, 0, 0};
  std::string& block = spec.block;
  if (opt.etag) {
    block += "ETag: \"" + stored.etag + "\"\r\n";
    spec.etag_length = stored.etag.size() + 2;
  }
  if (own.has_cache_control) {
    block += "Cache-Control: " + own.cache_control + "\r\n";
  } else if (!opt.cache_control.empty() && !own.drop_cache_control) {
    block += "Cache-Control: " + std::string(opt.cache_control) + "\r\n";
  }
  if (multi) block += "Vary: Accept-Encoding\r\n";
  block += own.lines + own.location_line;
  spec.length_304 = block.size();
  if (own.has_content_type) {
    block += "Content-Type: " + own.content_type + "\r\n";
  } else if (!own.drop_content_type) {
    block += "Content-Type: " + item.content_type + "\r\n";
  }
  if (stored.coding != encoding::identity) {
    block += "Content-Encoding: " + std::string(token(stored.coding)) + "\r\n";
  }
  spec.length_partial = block.size();
  block += "Content-Length: " + std::to_string(stored.length) + "\r\n";
  return spec;
}

// The entry for a resource whose variants are `item`'s, answered with `status`.
std::string resource_entry(unsigned status, const stored_item& item, const header_options& opt,
                           const compiled_headers& own = {}, unsigned flags = 0) {
  std::vector<variant_spec> specs;
  for (const auto& stored : item.variants) {
    specs.push_back(resource_variant(stored, item, item.variants.size() > 1, opt, own));
  }
  return encode_entry(status, specs.data(), specs.size(), flags | own.flags);
}

// The entry of a redirect to `location` (safe in a header): Cache-Control for the permanent ones.
std::string redirect_entry(const route& answer, std::string_view cache_control,
                           const compiled_headers& own = {}, unsigned flags = 0) {
  variant_spec spec{encoding::identity, 0, 0, {}, 0, 0, 0};
  spec.block = "Location: " + answer.location + "\r\n";
  const bool permanent = answer.status == 301 || answer.status == 308;
  if (own.has_cache_control) {
    spec.block += "Cache-Control: " + own.cache_control + "\r\n";
  } else if (permanent && !cache_control.empty() && !own.drop_cache_control) {
    spec.block += "Cache-Control: " + std::string(cache_control) + "\r\n";
  }
  spec.block += own.lines;
  spec.block += "Content-Length: 0\r\n";
  if (answer.keeps_query) flags |= schema::entry_flags::keeps_query;
  return encode_entry(answer.status, &spec, 1, flags | own.flags);
}

// The --debug line of one stored item.
std::string describe(const stored_item& item, const work_result& result, std::string_view path,
                     bool deduplicated) {
  std::string line = std::string(path) + " " + item.content_type;
  for (const auto& variant : item.variants) {
    line += " " + std::string(token(variant.coding)) + "=" + std::to_string(variant.length);
  }
  for (const auto& coded : result.coded) {
    if (!coded.kept) line += " " + std::string(token(coded.setting.codec)) + "=skipped";
    if (coded.reused) line += " (" + std::string(token(coded.setting.codec)) + " reused)";
  }
  if (deduplicated) line += " (deduplicated)";
  return line;
}

void throw_if_cancelled(const build_hooks& hooks) {
  if (hooks.cancelled && hooks.cancelled()) throw std::runtime_error("interrupted");
}

header_options headers_for(const build_options& options) {
  return {options.include_etag,
          options.include_cache ? std::string_view(options.cache_control) : std::string_view{}};
}

// ---- phases, in the order build() runs them -----------------------------------------------------

// Refuses options that would make a bad archive, before anything is read.
void validate(const build_options& options) {
  if (options.sources.empty()) throw base::invalid_option("--sources is required");
  if (options.archive.empty()) throw base::invalid_option("--archive is required");
  std::set<encoding> seen;
  for (const auto& setting : options.codecs) {
    const std::string name(codec_name(setting.codec));
    if (!is_valid_level(setting.codec, setting.level)) {
      throw base::invalid_option("compression level " + std::to_string(setting.level) +
                                 " is out of range for '" + name + "' (gzip 1-9, brotli 0-11)");
    }
    if (!seen.insert(setting.codec).second) {
      throw base::invalid_option("compression '" + name + "' given twice");
    }
  }
  for (const char c : options.cache_control) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      throw base::invalid_option("cache-control value holds a control character");
    }
  }
}

// Whether the target exists (it must then be a regular file), and which file it is.
target_state inspect_target(const std::string& archive) {
  struct stat info {};
  if (::stat(archive.c_str(), &info) != 0) return {};
  if (!S_ISREG(info.st_mode)) throw_error("archive path is not a regular file", archive);
  return {true, {static_cast<std::uint64_t>(info.st_dev), static_cast<std::uint64_t>(info.st_ino)}};
}

// A file that alone passes the format's 4 GiB is refused before anything is read or written; a
// tree that passes it in total is refused by the writer, before the record that would.
void refuse_oversized_files(const source_tree& tree) {
  for (const auto& file : tree.files) {
    if (file.size > cdb::format::max_size - cdb::format::header_size) {
      throw_error("file too large for the 4 GiB limit of the archive format", file.file);
    }
  }
}

// The previous archive, opened as the compression cache unless told otherwise. One that cannot
// be opened is not reused (with a warning): the build goes on and replaces it.
class previous_archive {
 public:
  previous_archive(const build_options& options, const target_state& target,
                   const build_hooks& hooks) {
    if (!target.exists || !options.reuse) return;
    try {
      file_.emplace(options.archive);
      archive_.emplace(file_->bytes());
    } catch (const std::exception& e) {
      archive_.reset();
      if (hooks.warning) {
        hooks.warning("not reusing the previous archive " + base::quote(options.archive) + ": " +
                      e.what());
      }
    }
  }
  [[nodiscard]] const reader* get() const { return archive_ ? &*archive_ : nullptr; }

 private:
  std::optional<base::mapped_file> file_;
  std::optional<reader> archive_;  // views into file_
};

// The files of `site` as work items (named with the host in front, for --debug lines and
// errors), and what they answer: their own paths, then the special files: wildcards and error
// pages by folder.
published_items collect_published(const site_plan& site, work_list& work) {
  published_items published;
  for (const auto& file : site.tree.files) {
    const auto [folder, name] = split_path(file.path);
    const std::size_t index = work.items.size();
    work.items.push_back({site.host + file.path, file.file, {}, file.size});
    work.source_bytes += file.size;
    if (is_wildcard_name(name)) {
      published.wildcards.try_emplace(std::string(folder), index);  // the first in order wins
      continue;
    }
    if (is_error_page_name(name)) {
      // `_404.html` is hidden and wins over `404.html`, which is also published as itself.
      auto [at, inserted] = published.error_pages.try_emplace(std::string(folder), index);
      if (!inserted && name == "_404.html") at->second = index;
      if (name.front() == '_') continue;
    }
    published.by_path.emplace(file.path, index);
  }
  return published;
}

// Each folder's index file: the first of index_extensions it has.
item_map find_folder_indexes(const std::vector<std::string>& folders, const item_map& by_path) {
  item_map indexes;
  for (const auto& folder : folders) {
    for (const auto extension : index_extensions) {
      const auto found = by_path.find(folder + "index." + std::string(extension));
      if (found != by_path.end()) {
        indexes.emplace(folder, found->second);
        break;
      }
    }
  }
  return indexes;
}

// The names of the folders directly inside `folder`, in order (`folders` is sorted).
std::vector<std::string> subfolders_of(const std::string& folder,
                                       const std::vector<std::string>& folders) {
  std::vector<std::string> names;
  for (const auto& other : folders) {
    if (other.size() > folder.size() && other.starts_with(folder) &&
        other.find('/', folder.size()) == other.size() - 1) {
      names.push_back(other.substr(folder.size(), other.size() - folder.size() - 1));
    }
  }
  return names;
}

// The published files directly inside `folder`, by name, with their sizes.
std::vector<std::pair<std::string, std::uint64_t>> files_of(const std::string& folder,
                                                            const published_items& published,
                                                            const work_list& work) {
  std::vector<std::pair<std::string, std::uint64_t>> files;
  for (const auto& [path, index] : published.by_path) {
    const auto [parent, name] = split_path(path);
    if (parent == folder) files.emplace_back(std::string(name), work.items[index].size);
  }
  return files;
}

// A generated listing for every folder of `site` that has no entry of its own yet: appended to
// the items, and recorded as the folder's entry.
void add_folder_listings(site_plan& site, work_list& work) {
  const auto& folders = site.tree.folders;
  for (const auto& folder : folders) {
    if (site.folder_entries.contains(folder)) continue;
    std::string html = folder_listing(folder, subfolders_of(folder, folders),
                                      files_of(folder, site.published, work));
    const std::uint64_t size = html.size();
    site.folder_entries.emplace(folder, work.items.size());
    work.items.push_back({site.host + folder + "index.html", {}, std::move(html), size});
  }
}

// The `_redirects` and `_headers` at the top of `tree`, taken out of it and parsed.
site_rules take_rules(source_tree& tree, std::string_view host) {
  std::string redirects, headers;
  std::erase_if(tree.files, [&](const source_file& file) {
    if (file.path == redirects_name) redirects = file.file;
    if (file.path == headers_name) headers = file.file;
    return file.path == redirects_name || file.path == headers_name;
  });
  if (redirects.empty() && headers.empty()) return {};
  return site_rules(redirects, headers, host);
}

// The sites of the sources: the whole tree, or one per host folder (in key order), each walked,
// and their items listed in `work`, site after site.
std::vector<site_plan> plan_sites(const build_options& options, const target_state& target,
                                  work_list& work) {
  std::vector<site_plan> sites;
  if (options.host_folders) {
    for (auto& folder : list_host_folders(options.sources, target.identity)) {
      sites.push_back({std::move(folder.host), walk(folder.file, target.identity), {}, {}, {}});
    }
  } else {
    sites.push_back({{}, walk(options.sources, target.identity), {}, {}, {}});
  }
  for (const auto& site : sites) refuse_oversized_files(site.tree);
  for (auto& site : sites) {
    site.rules = take_rules(site.tree, site.host);
    site.published = collect_published(site, work);
    if (options.include_index) {
      site.folder_entries = find_folder_indexes(site.tree.folders, site.published.by_path);
    }
    if (options.include_folder_listing) add_folder_listings(site, work);
  }
  return sites;
}

// Writes each distinct body, and each "not worth it" mark, once; says where every variant lies.
class body_store {
 public:
  // Adds what it writes to the byte and variant counts of `stats`.
  body_store(cdb::writer& writer, build_stats& stats) : writer_(writer), stats_(stats) {}

  // Stores the variants of `result`. `deduplicated`: its content was stored before.
  stored_item store(const work_result& result, bool& deduplicated) {
    stored_item item;
    item.content_type = std::string(result.type.value);
    const std::string identity_key = schema::body_key(result.hash, "identity");
    deduplicated = positions_.contains(identity_key);
    if (deduplicated) stats_.bytes_deduplicated += result.content.size();
    item.variants.push_back({encoding::identity,
                             store_once(identity_key, result.content, encoding::identity),
                             static_cast<std::uint32_t>(result.content.size()), result.etag});
    for (const auto& coded : result.coded) {
      // Counted whether kept or not: both are work a rebuild saves.
      ++(coded.reused ? stats_.variants_reused : stats_.variants_compressed);
      const std::string name = setting_name(coded.setting);
      if (!coded.kept) {
        const std::string key = schema::skip_key(result.hash, name);
        if (positions_.emplace(key, 0).second) writer_.add(key, {});
        continue;
      }
      const auto codec = coded.setting.codec;
      item.variants.push_back({codec,
                               store_once(schema::body_key(result.hash, name), coded.data(), codec),
                               static_cast<std::uint32_t>(coded.data().size()), coded.etag});
    }
    std::sort(item.variants.begin(), item.variants.end(),
              [](const stored_variant& a, const stored_variant& b) { return a.coding < b.coding; });
    if (!deduplicated) {
      std::uint32_t smallest = item.variants.front().length;
      for (const auto& v : item.variants) smallest = std::min(smallest, v.length);
      stats_.bytes_smallest += smallest;
    }
    return item;
  }

 private:
  // The position of the body under `key`, written now unless it was before.
  std::uint32_t store_once(const std::string& key, std::string_view bytes, encoding coding) {
    const auto found = positions_.find(key);
    if (found != positions_.end()) return found->second;
    const std::uint32_t position = writer_.add(key, bytes);
    positions_.emplace(key, position);
    stats_.bytes_stored += bytes.size();
    stats_.bytes_by_coding[static_cast<std::size_t>(coding)] += bytes.size();
    return position;
  }

  cdb::writer& writer_;
  build_stats& stats_;
  std::unordered_map<std::string, std::uint32_t> positions_;  // body or skip key -> position
};

// Reads, hashes and compresses the items on `jobs` threads; writes their bodies here, in item
// order. Returns where each item's variants lie, by item index.
std::vector<stored_item> store_bodies(const work_list& work, const reader* previous,
                                      const build_options& options, const build_hooks& hooks,
                                      cdb::writer& writer, build_stats& stats) {
  const auto& items = work.items;
  std::vector<stored_item> stored;
  stored.reserve(items.size());
  body_store bodies(writer, stats);
  pipeline workers(items, options, previous, hooks);
  std::uint64_t bytes_done = 0;
  for (std::size_t index = 0; index < items.size(); ++index) {
    throw_if_cancelled(hooks);
    const work_result result = workers.take(index);
    if (result.error) std::rethrow_exception(result.error);
    bool deduplicated = false;
    stored.push_back(bodies.store(result, deduplicated));
    if (hooks.debug) hooks.debug(describe(stored.back(), result, items[index].path, deduplicated));
    bytes_done += items[index].size;
    workers.release(index, items[index].size);
    if (hooks.progress) {
      hooks.progress({index + 1, items.size(), bytes_done, work.source_bytes});
    }
  }
  return stored;
}

// The paths answered with a resource: files, folder indexes and, unless turned off,
// extension-less aliases ("/a" for "/a.html"). The first claim of a path wins.
item_map compile_entries(const item_map& by_path, const item_map& folder_entries,
                         bool include_strip) {
  item_map entries = by_path;
  for (const auto& [folder, index] : folder_entries) entries.emplace(folder, index);
  if (!include_strip) return entries;
  for (const auto extension : strip_extensions) {
    const std::string suffix = "." + std::string(extension);
    for (const auto& [path, index] : by_path) {
      if (!path.ends_with(suffix)) continue;
      const std::string alias = path.substr(0, path.size() - suffix.size());
      if (alias.back() == '/') continue;  // "/a/.html" is a dotfile; never an alias
      entries.emplace(alias, index);
    }
  }
  return entries;
}

// A 308 from "/a" to "/a/" (or back) wherever only one of the two has an entry.
std::map<std::string, std::string> compile_slash_redirects(const item_map& entries) {
  std::map<std::string, std::string> redirects;
  for (const auto& [path, index] : entries) {
    if (path == "/") continue;
    if (path.back() == '/') {
      const std::string bare = path.substr(0, path.size() - 1);
      if (!entries.contains(bare)) redirects.emplace(bare, path);
    } else if (!entries.contains(path + "/")) {
      redirects.emplace(path + "/", path);
    }
  }
  return redirects;
}

// The site's own routes (files, indexes, aliases, slash redirects), then what its rules add or
// replace. The rules' blobs for the server go to `blobs`.
route_map compile_routes(const site_plan& site, const build_options& options, rule_blobs& blobs) {
  route_map compiled;
  const item_map entries =
      compile_entries(site.published.by_path, site.folder_entries, options.include_strip);
  for (const auto& [path, item] : entries) {
    route file;
    file.item = item;
    file.archived = true;
    compiled.emplace(path, std::move(file));
  }
  if (options.include_slash_redirects) {
    for (const auto& [from, to] : compile_slash_redirects(entries)) {
      route redirect;
      redirect.status = 308;
      redirect.location = http::encode_path(to);
      redirect.keeps_query = true;
      redirect.archived = true;
      compiled.emplace(from, std::move(redirect));
    }
  }
  blobs = site.rules.apply_redirects(compiled);
  return compiled;
}

// The --debug line of a path that rules apply to, or empty.
std::string describe_rules(std::string_view key, const route& answer, const compiled_headers& own) {
  if (answer.rule_line == 0 && own.block_lines.empty()) return {};
  std::string line = std::string(key);
  if (!own.block_lines.empty()) {
    line += " _headers lines";
    for (const auto number : own.block_lines) line += " " + std::to_string(number);
  }
  if (answer.rule_line != 0) {
    line += answer.forced_rules ? " _redirects forced rules from line " : " _redirects line ";
    line += std::to_string(answer.rule_line);
  }
  return line;
}

// The entry of one route, with its path's `_headers`.
std::string route_entry(std::string_view path, const route& answer, const site_plan& site,
                        const std::vector<stored_item>& stored, const header_options& headers,
                        const build_hooks& hooks) {
  const compiled_headers own = site.rules.headers_for(path);
  if (hooks.debug) {
    const auto line = describe_rules(site.host + std::string(path), answer, own);
    if (!line.empty()) hooks.debug(line);
  }
  const unsigned flags = answer.forced_rules ? schema::entry_flags::forced_rules : 0;
  try {
    if (answer.is_redirect()) return redirect_entry(answer, headers.cache_control, own, flags);
    // A 404 rewrite is an error page: no validators, no caching, as the fallbacks.
    const header_options options = answer.status == 404 ? header_options{false, {}} : headers;
    return resource_entry(answer.status, stored[answer.item], options, own, flags);
  } catch (const std::length_error&) {
    if (own.block_lines.empty()) throw;
    throw site.rules.oversized_block(path, own);
  }
}

// Writes the site's routes in their sorted order; their keys have the site's host in front (the
// Locations do not: they stay within the host). Then the site's rule blobs.
void write_routes(const site_plan& site, const route_map& compiled, const rule_blobs& blobs,
                  const std::vector<stored_item>& stored, const header_options& headers,
                  const build_hooks& hooks, cdb::writer& writer, written_routes& written) {
  for (const auto& [path, answer] : compiled) {
    const std::string key = site.host + path;
    writer.add(key, route_entry(path, answer, site, stored, headers, hooks));
    ++(answer.is_redirect() ? written.redirects : written.paths);
    written.paths_listing += key + "\n";
  }
  const auto as_text = [](const std::vector<std::byte>& blob) {
    return std::string_view(reinterpret_cast<const char*>(blob.data()), blob.size());
  };
  if (!blobs.patterns.empty()) writer.add(schema::rules_key(site.host), as_text(blobs.patterns));
  if (!blobs.forced.empty()) writer.add(schema::forced_rules_key(site.host), as_text(blobs.forced));
  written.pattern_rules += blobs.pattern_count;
}

// Writes each folder's fallback: its wildcard (200), or else its error page (404), keyed with the
// site's host in front, with the `_headers` of the file's own path. Raises the depth the reader
// walks from to the deepest level with a fallback plus one ("/" is level 0).
void write_fallbacks(const site_plan& site, const work_list& work,
                     const std::vector<stored_item>& stored, const header_options& headers,
                     cdb::writer& writer, written_routes& written) {
  const auto& published = site.published;
  const auto own_headers = [&](std::size_t item) {
    return site.rules.headers_for(std::string_view(work.items[item].path).substr(site.host.size()));
  };
  for (const auto& folder : site.tree.folders) {
    std::string value;
    if (const auto wildcard = published.wildcards.find(folder);
        wildcard != published.wildcards.end()) {
      value = resource_entry(200, stored[wildcard->second], headers, own_headers(wildcard->second));
    } else if (const auto page = published.error_pages.find(folder);
               page != published.error_pages.end()) {
      value = resource_entry(404, stored[page->second], {false, {}}, own_headers(page->second));
    } else {
      continue;
    }
    writer.add(std::string(schema::fallback_prefix) + site.host + folder, value);
    // The level plus one is the count of '/'.
    const auto slashes = static_cast<std::size_t>(std::count(folder.begin(), folder.end(), '/'));
    written.fallback_depth = std::max(written.fallback_depth, slashes);
  }
}

// The `kawipiko:hosts` text: the sites' hosts, one per line, in key order.
std::string hosts_text(const std::vector<site_plan>& sites) {
  std::string text;
  for (const auto& site : sites) text += site.host + "\n";
  return text;
}

// The `kawipiko:meta` text: the build's settings and counts.
std::string meta_text(const build_options& options, const header_options& headers,
                      const build_stats& stats, std::size_t fallback_depth) {
  std::string compress_setting;
  for (const auto& setting : options.codecs) {
    if (setting.codec == encoding::identity) continue;
    if (!compress_setting.empty()) compress_setting += ',';
    compress_setting += setting_name(setting);
  }
  std::string meta;
  meta +=
      "compress=" + (compress_setting.empty() ? std::string("identity") : compress_setting) + "\n";
  meta += "etag=" + std::string(options.include_etag ? "yes" : "no") + "\n";
  meta += "cache-control=" + std::string(headers.cache_control) + "\n";
  meta += "files=" + std::to_string(stats.files) + "\n";
  meta += "folders=" + std::to_string(stats.folders) + "\n";
  meta += "paths=" + std::to_string(stats.paths) + "\n";
  meta += "redirects=" + std::to_string(stats.redirects) + "\n";
  meta += "pattern-rules=" + std::to_string(stats.pattern_rules) + "\n";
  meta += "fallback-depth=" + std::to_string(fallback_depth) + "\n";
  return meta;
}

}  // namespace

build_stats build(const build_options& options, const build_hooks& hooks) {
  const auto started = std::chrono::steady_clock::now();
  validate(options);
  const target_state target = inspect_target(options.archive);
  work_list work;
  const std::vector<site_plan> sites = plan_sites(options, target, work);
  const previous_archive previous(options, target, hooks);

  base::atomic_file output(options.archive);
  cdb::writer writer(output.file(), options.archive);
  if (options.host_folders) {
    writer.add(schema::schema_key, schema::schema_value_hosts);
    writer.add(schema::hosts_key, hosts_text(sites));
  } else {
    writer.add(schema::schema_key, schema::schema_value);
  }

  build_stats stats;
  for (const auto& site : sites) {
    stats.files += site.tree.files.size();
    stats.folders += site.tree.folders.size();
  }
  stats.bytes_in = work.source_bytes;
  const auto stored = store_bodies(work, previous.get(), options, hooks, writer, stats);

  const header_options headers = headers_for(options);
  written_routes written;
  for (const auto& site : sites) {
    rule_blobs blobs;
    const route_map compiled = compile_routes(site, options, blobs);
    write_routes(site, compiled, blobs, stored, headers, hooks, writer, written);
  }
  for (const auto& site : sites) write_fallbacks(site, work, stored, headers, writer, written);
  stats.paths = written.paths;
  stats.redirects = written.redirects;
  stats.pattern_rules = written.pattern_rules;
  if (options.include_file_listing) writer.add(schema::paths_key, written.paths_listing);
  writer.add(schema::meta_key, meta_text(options, headers, stats, written.fallback_depth));

  throw_if_cancelled(hooks);
  stats.archive_size = writer.projected_size();
  writer.finish();
  output.commit();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

}  // namespace kawipiko::archive
