#pragma once
// The source tree walk of the archiver: which files of a folder are published and under which
// request paths. Sorted (bytewise by name, depth first) so that archives are reproducible.
//
// Rules: dotfiles and dot-folders are skipped (except a top-level `.well-known/`), and so are
// editor leftovers (`*~`, `#*#`). Symlinks are followed wherever they point; a dangling symlink,
// a symlink loop, a FIFO, socket or device, an unreadable folder, or a name that is not valid
// UTF-8 or holds a control byte stops the walk with a one-line error naming the path.

#include <cstdint>
#include <string>
#include <vector>

namespace kawipiko::archive {

struct source_file {
  std::string path;    // request path: "/docs/a.html" (always starts with '/')
  std::string file;    // filesystem path to read
  std::uint64_t size;  // at walk time; a file whose size changes while read is an error
};

struct source_tree {
  std::vector<source_file> files;    // sorted by path
  std::vector<std::string> folders;  // request paths with a trailing '/', "/" first; sorted
};

struct skip_identity {
  std::uint64_t device = 0, inode = 0;  // a file to leave out (the target archive itself)
};

// Walks `root`. Throws std::runtime_error / std::system_error naming the path at fault.
source_tree walk(const std::string& root, const skip_identity& skip = {});

// One top-level folder of a host-folders tree: the host whose site it is, and where it lies.
struct host_folder {
  std::string host;  // "example.com", "*.example.com" (lower case) or "_default"
  std::string file;  // the folder, to walk as that host's root
};

// The host folders of `root` (the names of its top-level folders, as http::parse_host_pattern
// reads them, or "_default"), sorted as their archive keys are: bytewise by "<host>/". Names the
// walk skips are skipped here too, and so is `skip`. Throws std::runtime_error naming the path
// for a file at the top (it belongs to no host), a folder name that is not a host name, two
// folders naming one host, and a tree without any host folder.
std::vector<host_folder> list_host_folders(const std::string& root, const skip_identity& skip = {});

}  // namespace kawipiko::archive
