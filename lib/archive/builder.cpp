#include "archive/builder.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "archive/entry.hpp"
#include "archive/pipeline.hpp"
#include "archive/reader.hpp"
#include "archive/schema.hpp"
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

using base::throw_errno;
using base::throw_error;

// Index files of a folder, by priority; and the suffixes an extension-less alias strips. These
// are the original tool's lists.
constexpr std::string_view index_extensions[] = {"html", "htm",  "xhtml", "xht",
                                                 "txt",  "json", "xml"};
constexpr std::string_view strip_extensions[] = {"html", "htm", "xhtml", "xht", "txt"};

// Where a variant of an item ended up in the archive.
struct stored_variant {
  encoding coding;
  std::uint32_t position;
  std::uint32_t length;
  std::string etag;
};

struct stored_item {
  std::string content_type;
  std::vector<stored_variant> variants;  // identity first
};

// ---- routing ------------------------------------------------------------------------------------

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

struct header_options {
  bool etag;
  std::string_view cache_control;  // empty: none
};

// The entry for a resource whose variants are `item`'s, answered with `status`.
std::string resource_entry(unsigned status, const stored_item& item, const header_options& opt) {
  std::vector<variant_spec> specs;
  const bool multi = item.variants.size() > 1;
  for (const auto& stored : item.variants) {
    variant_spec spec{stored.coding, stored.position, stored.length, {}, 0, 0, 0};
    std::string& block = spec.block;
    if (opt.etag) {
      block += "ETag: \"" + stored.etag + "\"\r\n";
      spec.etag_length = stored.etag.size() + 2;
    }
    if (!opt.cache_control.empty())
      block += "Cache-Control: " + std::string(opt.cache_control) + "\r\n";
    if (multi) block += "Vary: Accept-Encoding\r\n";
    spec.length_304 = block.size();
    block += "Content-Type: " + item.content_type + "\r\n";
    if (stored.coding != encoding::identity) {
      block += "Content-Encoding: " + std::string(token(stored.coding)) + "\r\n";
    }
    spec.length_partial = block.size();
    block += "Content-Length: " + std::to_string(stored.length) + "\r\n";
    specs.push_back(std::move(spec));
  }
  return encode_entry(status, specs.data(), specs.size());
}

std::string redirect_entry(std::string_view location, std::string_view cache_control) {
  variant_spec spec{encoding::identity, 0, 0, {}, 0, 0, 0};
  spec.block = "Location: " + http::encode_path(location) + "\r\n";
  if (!cache_control.empty()) spec.block += "Cache-Control: " + std::string(cache_control) + "\r\n";
  spec.block += "Content-Length: 0\r\n";
  return encode_entry(308, &spec, 1);
}

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

void validate(const build_options& options) {
  if (options.sources.empty()) throw std::invalid_argument("no sources folder given");
  if (options.archive.empty()) throw std::invalid_argument("no archive path given");
  std::set<encoding> seen;
  for (const auto& setting : options.codecs) {
    if (!seen.insert(setting.codec).second) {
      throw std::invalid_argument("compression '" + std::string(token(setting.codec)) +
                                  "' given twice");
    }
    if (!is_valid_level(setting.codec, setting.level)) {
      throw std::invalid_argument("invalid level " + std::to_string(setting.level) + " for '" +
                                  std::string(token(setting.codec)) + "'");
    }
  }
  for (const char c : options.cache_control) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      throw std::invalid_argument("cache-control value holds a control character");
    }
  }
}

}  // namespace

build_stats build(const build_options& options, const build_hooks& hooks) {
  const auto started = std::chrono::steady_clock::now();
  validate(options);
  build_stats stats;

  // The previous archive: left out of the walk (it may sit inside the sources) and, unless told
  // otherwise, reused as the compression cache.
  skip_identity skip;
  struct stat target_info {};
  const bool target_exists = ::stat(options.archive.c_str(), &target_info) == 0;
  if (target_exists) {
    if (!S_ISREG(target_info.st_mode))
      throw_error("archive path is not a regular file", options.archive);
    skip = {static_cast<std::uint64_t>(target_info.st_dev),
            static_cast<std::uint64_t>(target_info.st_ino)};
  }
  const source_tree tree = walk(options.sources, skip);
  // A file that alone passes the format's 4 GiB is refused before anything is read or written;
  // a tree that passes it in total is refused by the writer, before the record that would.
  for (const auto& file : tree.files) {
    if (file.size > cdb::format::max_size - cdb::format::header_size) {
      throw_error("file too large for the 4 GiB limit of the archive format", file.file);
    }
  }

  std::optional<base::mapped_file> previous_file;
  std::optional<reader> previous;
  if (target_exists && options.reuse) {
    try {
      previous_file.emplace(options.archive);
      previous.emplace(previous_file->bytes());
    } catch (const std::exception& e) {
      previous.reset();
      if (hooks.warning) {
        hooks.warning("not reusing the previous archive " + base::quote(options.archive) + ": " +
                      e.what());
      }
    }
  }

  // What is served, by request path: the files' own paths, then the special files.
  std::vector<work_item> items;
  std::map<std::string, std::size_t> by_path;                 // published path -> item
  std::map<std::string, std::size_t> wildcards, error_pages;  // folder -> item
  for (const auto& file : tree.files) {
    const auto [folder, name] = split_path(file.path);
    const std::size_t index = items.size();
    items.push_back({file.path, file.file, {}, file.size});
    stats.bytes_in += file.size;
    if (is_wildcard_name(name)) {
      wildcards.try_emplace(std::string(folder), index);  // the first in sorted order wins
      continue;
    }
    if (is_error_page_name(name)) {
      // `_404.html` is hidden and wins over `404.html`, which is also published as itself.
      auto [at, inserted] = error_pages.try_emplace(std::string(folder), index);
      if (!inserted && name == "_404.html") at->second = index;
      if (name.front() == '_') continue;
    }
    by_path.emplace(file.path, index);
  }

  // Folder indexes and, where a folder has none, optional generated listings.
  std::map<std::string, std::size_t> folder_entries;  // "/a/" -> item
  for (const auto& folder : tree.folders) {
    if (!options.include_index) break;
    for (const auto extension : index_extensions) {
      const auto found = by_path.find(folder + "index." + std::string(extension));
      if (found != by_path.end()) {
        folder_entries.emplace(folder, found->second);
        break;
      }
    }
  }
  if (options.include_folder_listing) {
    for (const auto& folder : tree.folders) {
      if (folder_entries.contains(folder)) continue;
      std::vector<std::string> subfolders;
      std::vector<std::pair<std::string, std::uint64_t>> files;
      for (const auto& other : tree.folders) {
        if (other.size() > folder.size() && other.starts_with(folder) &&
            other.find('/', folder.size()) == other.size() - 1) {
          subfolders.push_back(other.substr(folder.size(), other.size() - folder.size() - 1));
        }
      }
      for (const auto& [path, index] : by_path) {
        const auto [parent, name] = split_path(path);
        if (parent == folder) files.emplace_back(std::string(name), items[index].size);
      }
      std::string html = folder_listing(folder, subfolders, files);
      const std::uint64_t size = html.size();
      folder_entries.emplace(folder, items.size());
      items.push_back({folder + "index.html", {}, std::move(html), size});
    }
  }

  // Read, hash and compress on `jobs` threads; write bodies here, in item order.
  base::atomic_file output(options.archive);
  cdb::writer writer(output.file(), options.archive);
  writer.add(schema::schema_key, schema::schema_value);

  std::vector<stored_item> stored(items.size());
  std::unordered_map<std::string, std::uint32_t> body_positions;  // body/skip key -> position
  {
    pipeline workers(items, options, previous ? &*previous : nullptr, hooks);
    std::uint64_t bytes_done = 0;
    for (std::size_t index = 0; index < items.size(); ++index) {
      if (hooks.cancelled && hooks.cancelled()) throw std::runtime_error("interrupted");
      work_result result = workers.take(index);
      if (result.error) std::rethrow_exception(result.error);

      auto& item = stored[index];
      item.content_type = std::string(result.type.value);
      const std::string identity_key = schema::body_key(result.hash, "identity");
      const bool deduplicated = body_positions.contains(identity_key);
      if (deduplicated) {
        stats.bytes_deduplicated += result.content.size();
      } else {
        body_positions[identity_key] = writer.add(identity_key, result.content);
        stats.bytes_stored += result.content.size();
        stats.bytes_by_coding[0] += result.content.size();
      }
      item.variants.push_back({encoding::identity, body_positions[identity_key],
                               static_cast<std::uint32_t>(result.content.size()), result.etag});
      for (const auto& coded : result.coded) {
        const std::string name = setting_name(coded.setting);
        // Counted whether kept or not: both are work a rebuild saves.
        if (coded.reused) {
          ++stats.variants_reused;
        } else {
          ++stats.variants_compressed;
        }
        if (!coded.kept) {
          const std::string key = schema::skip_key(result.hash, name);
          if (body_positions.emplace(key, 0).second) writer.add(key, {});
          continue;
        }
        const std::string key = schema::body_key(result.hash, name);
        if (!body_positions.contains(key)) {
          body_positions[key] = writer.add(key, coded.data());
          stats.bytes_stored += coded.data().size();
          stats.bytes_by_coding[static_cast<std::size_t>(coded.setting.codec)] +=
              coded.data().size();
        }
        item.variants.push_back({coded.setting.codec, body_positions[key],
                                 static_cast<std::uint32_t>(coded.data().size()), coded.etag});
      }
      // Variants in the schema's order: identity, gzip, br.
      std::sort(
          item.variants.begin(), item.variants.end(),
          [](const stored_variant& a, const stored_variant& b) { return a.coding < b.coding; });
      if (!deduplicated) {
        std::uint32_t smallest = item.variants.front().length;
        for (const auto& v : item.variants) smallest = std::min(smallest, v.length);
        stats.bytes_smallest += smallest;
      }
      if (hooks.debug) hooks.debug(describe(item, result, items[index].path, deduplicated));
      bytes_done += items[index].size;
      workers.release(index, items[index].size);
      if (hooks.progress) {
        hooks.progress({index + 1, items.size(), bytes_done, stats.bytes_in});
      }
    }
  }

  // Entries, by request path: files, folder indexes, aliases, then slash redirects.
  const header_options headers{options.include_etag, options.include_cache
                                                         ? std::string_view(options.cache_control)
                                                         : std::string_view{}};
  std::map<std::string, std::size_t> entries = by_path;
  for (const auto& [folder, index] : folder_entries) entries.emplace(folder, index);
  if (options.include_strip) {
    for (const auto extension : strip_extensions) {
      const std::string suffix = "." + std::string(extension);
      for (const auto& [path, index] : by_path) {
        if (!path.ends_with(suffix)) continue;
        const std::string alias = path.substr(0, path.size() - suffix.size());
        if (alias.back() == '/') continue;  // "/a/.html" is a dotfile; never an alias
        entries.emplace(alias, index);
      }
    }
  }
  std::map<std::string, std::string> redirects;  // from -> to
  if (options.include_slash_redirects) {
    for (const auto& [path, index] : entries) {
      if (path == "/") continue;
      if (path.back() == '/') {
        const std::string bare = path.substr(0, path.size() - 1);
        if (!entries.contains(bare)) redirects.emplace(bare, path);
      } else if (!entries.contains(path + "/")) {
        redirects.emplace(path + "/", path);
      }
    }
  }

  std::string paths_listing;
  auto entry_it = entries.begin();
  auto redirect_it = redirects.begin();
  // Merge the two sorted maps so the file's records stay in one sorted order.
  while (entry_it != entries.end() || redirect_it != redirects.end()) {
    const bool take_entry = redirect_it == redirects.end() ||
                            (entry_it != entries.end() && entry_it->first < redirect_it->first);
    if (take_entry) {
      writer.add(entry_it->first, resource_entry(200, stored[entry_it->second], headers));
      paths_listing += entry_it->first + "\n";
      ++stats.paths;
      ++entry_it;
    } else {
      writer.add(redirect_it->first, redirect_entry(redirect_it->second, headers.cache_control));
      paths_listing += redirect_it->first + "\n";
      ++stats.redirects;
      ++redirect_it;
    }
  }

  // Fallbacks: per folder, its wildcard (200) or else its error page (404).
  std::size_t fallback_depth = 0;
  for (const auto& folder : tree.folders) {
    std::string value;
    if (const auto wildcard = wildcards.find(folder); wildcard != wildcards.end()) {
      value = resource_entry(200, stored[wildcard->second], headers);
    } else if (const auto page = error_pages.find(folder); page != error_pages.end()) {
      value = resource_entry(404, stored[page->second], {false, {}});
    } else {
      continue;
    }
    writer.add(std::string(schema::fallback_prefix) + folder, value);
    // The reader wants the deepest level plus one ("/" is level 0): the count of '/'.
    const auto slashes = static_cast<std::size_t>(std::count(folder.begin(), folder.end(), '/'));
    fallback_depth = std::max(fallback_depth, slashes);
  }

  if (options.include_file_listing) writer.add(schema::paths_key, paths_listing);

  stats.files = tree.files.size();
  stats.folders = tree.folders.size();
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
  meta += "fallback-depth=" + std::to_string(fallback_depth) + "\n";
  writer.add(schema::meta_key, meta);

  if (hooks.cancelled && hooks.cancelled()) throw std::runtime_error("interrupted");
  stats.archive_size = writer.projected_size();
  writer.finish();
  output.commit();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

}  // namespace kawipiko::archive
