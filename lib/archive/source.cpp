#include "archive/source.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "base/error.hpp"

namespace kawipiko::archive {

namespace {

using base::throw_errno;
using base::throw_error;

// Request paths longer than this are refused: they could not be requested through any sane
// client, and keys, Location headers and listings stay bounded.
constexpr std::size_t max_path_length = 4000;

bool is_valid_utf8_without_controls(std::string_view name) noexcept {
  std::size_t i = 0;
  while (i < name.size()) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t extra = 0;
    std::uint32_t code = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      extra = 1;
      code = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
      extra = 2;
      code = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
      extra = 3;
      code = c & 0x07u;
    } else {
      return false;
    }
    if (name.size() - i <= extra) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(name[i + k]);
      if ((next & 0xc0u) != 0x80u) return false;
      code = (code << 6) | (next & 0x3fu);
    }
    // Overlong forms, surrogates and code points past U+10FFFF.
    if ((extra == 2 && code < 0x800) || (extra == 3 && code < 0x10000) || code > 0x10ffff ||
        (code >= 0xd800 && code <= 0xdfff)) {
      return false;
    }
    if (code >= 0x80 && code < 0xa0) return false;  // C1 controls
    i += extra + 1;
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
