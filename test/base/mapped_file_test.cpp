#include "base/mapped_file.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;
using kawipiko::base::mapped_file;

namespace {
std::string as_string(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}
}  // namespace

TEST_CASE("a mapped file shows the file's bytes in both modes, even after it is replaced",
          "[base]") {
  const auto path = fs::temp_directory_path() / "kawipiko-mapped-file-test.bin";
  { std::ofstream(path, std::ios::binary) << "hello, archive"; }
  for (const auto how : {mapped_file::mode::mmap, mapped_file::mode::in_memory}) {
    mapped_file file(path.string(), how);
    CHECK(file.size() == 14);
    file.preload();
    // Replace the file by rename, as a deploy does: the old view must not change.
    const auto next = path.string() + ".next";
    { std::ofstream(next, std::ios::binary) << "another content!!"; }
    fs::rename(next, path);
    CHECK(as_string(file.bytes()) == "hello, archive");
    mapped_file moved = std::move(file);
    CHECK(as_string(moved.bytes()) == "hello, archive");
    { std::ofstream(path, std::ios::binary) << "hello, archive"; }
  }
  fs::remove(path);
}

TEST_CASE("opening a missing file or a folder throws a message naming it", "[base]") {
  CHECK_THROWS_WITH(mapped_file("/nonexistent/kawipiko.cdb"),
                    Catch::StartsWith("cannot open '/nonexistent/kawipiko.cdb'"));
  CHECK_THROWS_WITH(mapped_file(fs::temp_directory_path().string()),
                    Catch::StartsWith("not a regular file"));
}

TEST_CASE("an empty file maps to an empty view", "[base]") {
  const auto path = fs::temp_directory_path() / "kawipiko-mapped-file-empty.bin";
  { std::ofstream(path, std::ios::binary); }
  mapped_file file(path.string());
  CHECK(file.size() == 0);
  CHECK(file.bytes().empty());
  fs::remove(path);
}

TEST_CASE("a leased mapping holds writers back and is told when one waits (no lease: a copy)",
          "[base]") {
  const auto path = fs::temp_directory_path() / "kawipiko-mapped-file-lease.bin";
  { std::ofstream(path, std::ios::binary) << "leased bytes"; }
  // The break notice is the lease signal: taken here rather than left to kill the test.
  sigset_t io;
  sigemptyset(&io);
  sigaddset(&io, kawipiko::base::lease_signal());
  REQUIRE(::pthread_sigmask(SIG_BLOCK, &io, nullptr) == 0);
  {
    const mapped_file file(path.string(), mapped_file::mode::leased_mmap);
    REQUIRE(file.lease_fd() >= 0);
    CHECK(file.lease_refused().empty());
    // A writer's open waits while the lease is held (a non-blocking one is refused at once), and
    // the holder is told which lease.
    const int writer = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
    CHECK(writer < 0);
    CHECK(errno == EWOULDBLOCK);
    siginfo_t info{};
    const timespec bound{5, 0};
    CHECK(::sigtimedwait(&io, &info, &bound) == kawipiko::base::lease_signal());
    CHECK(info.si_fd == file.lease_fd());
    CHECK(as_string(file.bytes()) == "leased bytes");
  }
  // Gone with the object: writers go on.
  const int writer = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
  CHECK(writer >= 0);
  {
    // Open for writing elsewhere: no lease can be had, so the bytes are read into memory.
    const mapped_file file(path.string(), mapped_file::mode::leased_mmap);
    CHECK(file.lease_fd() < 0);
    CHECK_FALSE(file.lease_refused().empty());
    CHECK(as_string(file.bytes()) == "leased bytes");
  }
  if (writer >= 0) ::close(writer);
  REQUIRE(::pthread_sigmask(SIG_UNBLOCK, &io, nullptr) == 0);
  fs::remove(path);
}
