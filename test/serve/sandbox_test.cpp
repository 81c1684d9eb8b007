#include "serve/sandbox.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "support/forked_child.hpp"
#include "support/skip.hpp"
#include "support/temp_folder.hpp"

namespace fs = std::filesystem;
namespace serve = kawipiko::serve;
using kawipiko::test::expect;
using kawipiko::test::in_child;
using kawipiko::test::temp_folder;

namespace {

// Whether `path` opens with `flags` (O_CREAT: mode 0644); errno tells why not.
bool opens(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

}  // namespace

TEST_CASE("the sandbox reads the folder of each file opened later, once", "[serve]") {
  temp_folder folder;
  folder.write("live/site.cdb", "a");
  folder.write("releases/v2.cdb", "b");
  fs::create_symlink(folder / "releases/v2.cdb", folder / "live/linked.cdb");
  const auto paths = serve::sandbox_paths_for(
      {(folder / "live/site.cdb").string(), (folder / "live/linked.cdb").string(),
       (folder / "live/../live/site.cdb").string(), "/etc/ssl/private/key.pem"},
      {(folder / "logs/access.log").string()});
  const std::vector<std::string> readable{(folder / "live").string(),
                                          (folder / "releases").string(), "/etc/ssl/private"};
  CHECK(paths.readable_folders == readable);
  CHECK(paths.writable_folders == std::vector<std::string>{(folder / "logs").string()});
  CHECK(paths.readable_files == std::vector<std::string>{"/proc/sys/fs/lease-break-time"});
}

TEST_CASE("a bare file name is read in the current folder", "[serve]") {
  const auto paths = serve::sandbox_paths_for({"site.cdb"}, {});
  CHECK(paths.readable_folders == std::vector<std::string>{fs::current_path().string()});
}

TEST_CASE("under Landlock a process reads only below its folders and writes nowhere else",
          "[serve]") {
  if (serve::landlock_abi() == 0) KAWIPIKO_SKIP("the kernel has no Landlock");
  temp_folder folder;
  const auto allowed = folder.write("allowed/site.cdb", "a");
  const auto outside = folder.write("outside/secret", "b");
  const auto outcome = in_child([&] {
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    serve::sandbox_paths paths;
    paths.readable_folders = {allowed.parent_path().string()};
    paths.writable_folders = {(folder / "logs").string()};
    fs::create_directory(folder / "logs");
    const int abi = serve::restrict_filesystem(paths);
    bool held = expect(abi == serve::landlock_abi(), "the kernel's ABI is used");
    held &= expect(opens(allowed, O_RDONLY), "an allowed file opens");
    held &= expect(
        opens(allowed.parent_path() / "new.cdb", O_RDONLY | O_CREAT) == false && errno == EACCES,
        "nothing is made in a read-only folder");
    held &= expect(!opens(allowed, O_WRONLY) && errno == EACCES, "an allowed file is read-only");
    held &= expect(!opens(outside, O_RDONLY) && errno == EACCES, "a file elsewhere is refused");
    held &= expect(!opens("/etc/passwd", O_RDONLY) && errno == EACCES, "/etc is refused");
    held &= expect(opens(folder / "logs/access.log", O_WRONLY | O_CREAT | O_APPEND),
                   "a log is made anew in its folder");
    return held ? 0 : 1;
  });
  INFO(outcome.errors);
  CHECK(outcome.exit_code == 0);
}
