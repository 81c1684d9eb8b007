#include "archive/source.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <utility>

#include "archive/schema.hpp"
#include "base/error.hpp"
#include "http/host.hpp"
#include "http/utf8.hpp"

namespace kawipiko::archive {

namespace {

using base::throw_errno;
using base::throw_error;

// Request paths longer than this are refused: they could not be requested through any sane
// client, and keys, Location headers and listings stay bounded.
constexpr std::size_t max_path_length = 4000;

// Control characters (C0, DEL, C1) are refused as well: the name becomes a published path.
bool is_valid_utf8_without_controls(std::string_view name) noexcept {
  while (!name.empty()) {
    const auto sequence = http::decode_utf8(name);
    if (sequence.status != http::utf8_status::valid) return false;
    const char32_t code = sequence.code;
    if (code < 0x20 || (code >= 0x7f && code < 0xa0)) return false;
    name.remove_prefix(sequence.size);
  }
  return true;
}

struct directory_guard {
  DIR* dir;
  ~directory_guard() {
    if (dir != nullptr) ::closedir(dir);
  }
};

// True if `name` (one path segment) is left out of archives by the rules in source.hpp.
// `top_level` tells whether the segment sits directly in the root (where `.well-known` is
// published).
bool is_ignored_name(std::string_view name, bool top_level) noexcept {
  if (name.empty()) return true;
  if (name.front() == '.') return !(top_level && name == ".well-known");
  if (name.back() == '~') return true;                                             // editor backups
  if (name.size() >= 2 && name.front() == '#' && name.back() == '#') return true;  // emacs
  return false;
}

// The names in folder `file` that the rules keep, sorted. `top_level`: as is_ignored_name.
std::vector<std::string> folder_names(const std::string& file, bool top_level) {
  directory_guard dir{::opendir(file.c_str())};
  if (dir.dir == nullptr) throw_errno(errno, "cannot read folder", file);
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* item = ::readdir(dir.dir)) {
    std::string_view name(item->d_name);
    if (name == "." || name == "..") continue;
    if (is_ignored_name(name, top_level)) continue;
    names.emplace_back(name);
    errno = 0;
  }
  if (errno != 0) throw_errno(errno, "cannot read folder", file);
  std::sort(names.begin(), names.end());
  return names;
}

// What `file` (named `name` in its folder) is, symlinks followed; a name or a link the rules
// refuse is an error naming it.
struct stat stat_child(const std::string& file, std::string_view name) {
  if (!is_valid_utf8_without_controls(name)) {
    throw_error("file name is not valid UTF-8 or holds a control character", file);
  }
  struct stat child {};
  if (::stat(file.c_str(), &child) != 0) {
    const int error = errno;
    struct stat link {};
    if ((error == ENOENT || error == ENOTDIR) && ::lstat(file.c_str(), &link) == 0 &&
        S_ISLNK(link.st_mode)) {
      throw_error("dangling symlink", file);
    }
    if (error == ELOOP) throw_error("symlink loop at", file);
    throw_errno(error, "cannot stat", file);
  }
  return child;
}

bool is_skipped(const struct stat& info, const skip_identity& skip) noexcept {
  return skip.inode != 0 && info.st_dev == skip.device && info.st_ino == skip.inode;
}

// `file` without trailing slashes (but "/" itself), after checking that it is a folder.
std::string sources_folder(const std::string& root) {
  struct stat info {};
  if (::stat(root.c_str(), &info) != 0) throw_errno(errno, "cannot open sources folder", root);
  if (!S_ISDIR(info.st_mode)) throw_error("sources is not a folder", root);
  std::string file = root;
  while (file.size() > 1 && file.back() == '/') file.pop_back();
  return file;
}

std::string child_of(const std::string& folder, const std::string& name) {
  return folder == "/" ? "/" + name : folder + "/" + name;
}

struct walker {
  const skip_identity& skip;
  source_tree tree;
  std::vector<std::pair<dev_t, ino_t>> ancestors;  // folders on the current path (loop check)

  void walk_folder(const std::string& file, const std::string& path) {
    if (path.size() > max_path_length) throw_error("path too long", file);
    struct stat info {};
    if (::stat(file.c_str(), &info) != 0) throw_errno(errno, "cannot read folder", file);
    const std::pair<dev_t, ino_t> identity{info.st_dev, info.st_ino};
    if (std::find(ancestors.begin(), ancestors.end(), identity) != ancestors.end()) {
      throw_error("symlink loop at", file);
    }
    const std::vector<std::string> names = folder_names(file, path == "/");
    tree.folders.push_back(path);
    ancestors.push_back(identity);
    for (const auto& name : names) {
      const std::string child_file = child_of(file, name);
      const struct stat child = stat_child(child_file, name);
      if (S_ISDIR(child.st_mode)) {
        walk_folder(child_file, path + name + "/");
      } else if (S_ISREG(child.st_mode)) {
        if (is_skipped(child, skip)) continue;
        const std::string child_path = path + name;
        if (child_path.size() > max_path_length) throw_error("path too long", child_file);
        tree.files.push_back({child_path, child_file, static_cast<std::uint64_t>(child.st_size)});
      } else {
        throw_error("not a regular file or folder (FIFO, socket or device)", child_file);
      }
    }
    ancestors.pop_back();
  }
};

// The host a top-level folder named `name` is the site of.
std::string host_of_folder(const std::string& name, const std::string& file) {
  if (name == schema::default_host) return name;
  const auto pattern = http::parse_host_pattern(name);
  if (!pattern) {
    throw_error("host folder name is not a host name (example.com, *.example.com or _default)",
                file);
  }
  return pattern->text();
}

}  // namespace

source_tree walk(const std::string& root, const skip_identity& skip) {
  walker w{skip, {}, {}};
  w.walk_folder(sources_folder(root), "/");
  std::sort(w.tree.files.begin(), w.tree.files.end(),
            [](const source_file& a, const source_file& b) { return a.path < b.path; });
  std::sort(w.tree.folders.begin(), w.tree.folders.end());
  return std::move(w.tree);
}

std::vector<host_folder> list_host_folders(const std::string& root, const skip_identity& skip) {
  const std::string folder = sources_folder(root);
  std::vector<host_folder> hosts;
  for (const auto& name : folder_names(folder, true)) {
    const std::string file = child_of(folder, name);
    const struct stat child = stat_child(file, name);
    if (S_ISREG(child.st_mode) && is_skipped(child, skip)) continue;
    if (!S_ISDIR(child.st_mode)) {
      throw_error("a file at the top of host folders belongs to no host", file);
    }
    hosts.push_back({host_of_folder(name, file), file});
  }
  // An archive that answers no host is a mistake (the wrong --sources), not a site.
  if (hosts.empty()) throw_error("no host folder in sources", folder);
  // Stable: of two folders naming one host, the error names them in the order of their names.
  std::stable_sort(hosts.begin(), hosts.end(), [](const host_folder& a, const host_folder& b) {
    return a.host + '/' < b.host + '/';
  });
  const auto twice = std::adjacent_find(
      hosts.begin(), hosts.end(),
      [](const host_folder& a, const host_folder& b) { return a.host == b.host; });
  if (twice != hosts.end()) {
    throw_error("two host folders name one host", std::next(twice)->file,
                "so does " + base::quote(twice->file));
  }
  return hosts;
}

}  // namespace kawipiko::archive
