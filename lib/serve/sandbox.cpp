#include "serve/sandbox.hpp"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>

#include "base/error.hpp"
#include "base/unique_fd.hpp"

namespace kawipiko::serve {

namespace fs = std::filesystem;

namespace {

// The rights by the ABI version that brought them. Debian 12's linux/landlock.h (Linux 6.1)
// stops at ABI 2; the kernels it runs on may offer more, so the later ones are spelled out here.
constexpr std::uint64_t fs_rights_v1 = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;  // EXECUTE..MAKE_SYM
constexpr std::uint64_t fs_refer = LANDLOCK_ACCESS_FS_REFER;                    // ABI 2
constexpr std::uint64_t fs_truncate = 1ULL << 14;                               // ABI 3
constexpr std::uint64_t fs_ioctl_dev = 1ULL << 15;                              // ABI 5
constexpr std::uint64_t net_bind_tcp = 1ULL << 0;                               // ABI 4
constexpr std::uint64_t net_connect_tcp = 1ULL << 1;                            // ABI 4
// ABI 6. Abstract Unix sockets (bit 0) stay open: systemd's $NOTIFY_SOCKET is often one.
constexpr std::uint64_t scope_signal = 1ULL << 1;

constexpr std::uint64_t read_rights = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
constexpr std::uint64_t write_rights =
    read_rights | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG;

// struct landlock_ruleset_attr as of ABI 6. The kernel reads as many bytes as it is given, so an
// older kernel is given only the fields it knows.
struct ruleset_attributes {
  std::uint64_t handled_access_fs = 0;
  std::uint64_t handled_access_net = 0;
  std::uint64_t scoped = 0;
};

ruleset_attributes handled_by(int abi, std::size_t& size) {
  ruleset_attributes handled;
  handled.handled_access_fs = fs_rights_v1;
  if (abi >= 2) handled.handled_access_fs |= fs_refer;
  if (abi >= 3) handled.handled_access_fs |= fs_truncate;
  if (abi >= 5) handled.handled_access_fs |= fs_ioctl_dev;
  size = sizeof handled.handled_access_fs;
  if (abi >= 4) {
    handled.handled_access_net = net_bind_tcp | net_connect_tcp;  // no rule grants either
    size += sizeof handled.handled_access_net;
  }
  if (abi >= 6) {
    handled.scoped = scope_signal;
    size += sizeof handled.scoped;
  }
  return handled;
}

// Grants `rights` below `path` (a folder) or on it (a file: file rights only).
void allow(int ruleset, const std::string& path, std::uint64_t rights, bool folder) {
  base::unique_fd target(::open(path.c_str(), O_PATH | O_CLOEXEC | (folder ? O_DIRECTORY : 0)));
  if (!target) base::throw_errno(errno, "cannot open for the sandbox", path);
  landlock_path_beneath_attr rule{};
  rule.allowed_access = rights;
  rule.parent_fd = target.get();
  if (::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0) {
    base::throw_errno(errno, "cannot add a sandbox rule for", path);
  }
}

std::string folder_of(const fs::path& file) {
  fs::path folder = file.parent_path();
  if (folder.empty()) folder = ".";
  std::error_code ignored;
  const fs::path absolute = fs::absolute(folder, ignored);
  fs::path normal = (absolute.empty() ? folder : absolute).lexically_normal();
  if (!normal.has_filename() && normal != normal.root_path())
    normal = normal.parent_path();  // "x/."
  return normal.string();
}

void add_once(std::vector<std::string>& list, std::string item) {
  if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(std::move(item));
}

// The folder of `file` and, for a symbolic link, the folder of what it points to now.
void add_folders_of(std::vector<std::string>& folders, const std::string& file) {
  add_once(folders, folder_of(file));
  std::error_code error;
  if (!fs::is_symlink(file, error)) return;
  const fs::path target = fs::canonical(file, error);
  if (!error) add_once(folders, folder_of(target));
}

}  // namespace

sandbox_paths sandbox_paths_for(const std::vector<std::string>& read_later,
                                const std::vector<std::string>& written_later) {
  sandbox_paths paths;
  for (const auto& file : read_later) add_folders_of(paths.readable_folders, file);
  for (const auto& file : written_later) add_folders_of(paths.writable_folders, file);
  constexpr const char* lease_break_time = "/proc/sys/fs/lease-break-time";
  if (::access(lease_break_time, R_OK) == 0) paths.readable_files.emplace_back(lease_break_time);
  return paths;
}

int landlock_abi() noexcept {
  const long version =
      ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return version > 0 ? static_cast<int>(version) : 0;
}

int restrict_filesystem(const sandbox_paths& paths) {
  const int abi = landlock_abi();
  if (abi == 0) return 0;
  std::size_t size = 0;
  const ruleset_attributes handled = handled_by(abi, size);
  base::unique_fd ruleset(
      static_cast<int>(::syscall(SYS_landlock_create_ruleset, &handled, size, 0U)));
  if (!ruleset) base::throw_errno(errno, "cannot make the sandbox's", "Landlock ruleset");
  for (const auto& folder : paths.readable_folders) allow(ruleset.get(), folder, read_rights, true);
  for (const auto& file : paths.readable_files) {
    allow(ruleset.get(), file, LANDLOCK_ACCESS_FS_READ_FILE, false);
  }
  for (const auto& folder : paths.writable_folders) {
    allow(ruleset.get(), folder, write_rights, true);
  }
  if (::syscall(SYS_landlock_restrict_self, ruleset.get(), 0U) != 0) {
    base::throw_errno(errno, "cannot enter the sandbox's", "Landlock ruleset");
  }
  return abi;
}

}  // namespace kawipiko::serve
