#include "archive/source.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "base/error.hpp"
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
    directory_guard dir{::opendir(file.c_str())};
    if (dir.dir == nullptr) throw_errno(errno, "cannot read folder", file);

    std::vector<std::string> names;
    errno = 0;
    while (const dirent* item = ::readdir(dir.dir)) {
      std::string_view name(item->d_name);
      if (name == "." || name == "..") continue;
      if (is_ignored_name(name, path == "/")) continue;
      names.emplace_back(name);
      errno = 0;
    }
    if (errno != 0) throw_errno(errno, "cannot read folder", file);
    std::sort(names.begin(), names.end());

    tree.folders.push_back(path);
    ancestors.push_back(identity);
    for (const auto& name : names) {
      const std::string child_file = file == "/" ? "/" + name : file + "/" + name;
      if (!is_valid_utf8_without_controls(name)) {
        throw_error("file name is not valid UTF-8 or holds a control character", child_file);
      }
      struct stat child {};
      if (::stat(child_file.c_str(), &child) != 0) {
        const int error = errno;
        struct stat link {};
        if ((error == ENOENT || error == ENOTDIR) && ::lstat(child_file.c_str(), &link) == 0 &&
            S_ISLNK(link.st_mode)) {
          throw_error("dangling symlink", child_file);
        }
        if (error == ELOOP) throw_error("symlink loop at", child_file);
        throw_errno(error, "cannot stat", child_file);
      }
      if (S_ISDIR(child.st_mode)) {
        walk_folder(child_file, path + name + "/");
      } else if (S_ISREG(child.st_mode)) {
        if (skip.inode != 0 && child.st_dev == skip.device && child.st_ino == skip.inode) continue;
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

}  // namespace

source_tree walk(const std::string& root, const skip_identity& skip) {
  struct stat info {};
  if (::stat(root.c_str(), &info) != 0) throw_errno(errno, "cannot open sources folder", root);
  if (!S_ISDIR(info.st_mode)) throw_error("sources is not a folder", root);
  std::string file = root;
  while (file.size() > 1 && file.back() == '/') file.pop_back();
  walker w{skip, {}, {}};
  w.walk_folder(file, "/");
  std::sort(w.tree.files.begin(), w.tree.files.end(),
            [](const source_file& a, const source_file& b) { return a.path < b.path; });
  std::sort(w.tree.folders.begin(), w.tree.folders.end());
  return std::move(w.tree);
}

}  // namespace kawipiko::archive
