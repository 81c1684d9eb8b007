#include "base/unique_fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <type_traits>
#include <utility>

using kawipiko::base::unique_fd;

namespace {

bool is_open(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}

// Both ends of a fresh pipe: two descriptors the test owns.
std::pair<int, int> make_pipe() {
  int ends[2] = {-1, -1};
  REQUIRE(::pipe2(ends, O_CLOEXEC) == 0);
  return {ends[0], ends[1]};
}

}  // namespace

TEST_CASE("a unique_fd closes its descriptor when it is destroyed", "[base]") {
  const auto [read_end, write_end] = make_pipe();
  {
    const unique_fd owner(read_end);
    CHECK(owner.get() == read_end);
    CHECK(owner.valid());
    CHECK(static_cast<bool>(owner));
  }
  CHECK_FALSE(is_open(read_end));
  ::close(write_end);
}

TEST_CASE("a default or -1 unique_fd holds nothing and closes nothing", "[base]") {
  const unique_fd none;
  CHECK(none.get() == -1);
  CHECK_FALSE(none.valid());
  CHECK_FALSE(static_cast<bool>(none));
  const unique_fd failed(-1);
  CHECK_FALSE(failed.valid());
}

TEST_CASE("moving a unique_fd hands the descriptor over, to be closed once", "[base]") {
  static_assert(!std::is_copy_constructible_v<unique_fd>);
  static_assert(!std::is_copy_assignable_v<unique_fd>);
  const auto [read_end, write_end] = make_pipe();
  unique_fd first(read_end);
  {
    const unique_fd second(std::move(first));
    CHECK_FALSE(first.valid());  // the moved-from state is what is tested
    CHECK(second.get() == read_end);
  }
  CHECK_FALSE(is_open(read_end));
  ::close(write_end);
}

TEST_CASE("move assignment closes the descriptor the target held", "[base]") {
  const auto [read_end, write_end] = make_pipe();
  unique_fd target(read_end);
  unique_fd source(write_end);
  target = std::move(source);
  CHECK_FALSE(is_open(read_end));
  CHECK(target.get() == write_end);
  CHECK(is_open(write_end));
  target = unique_fd();
  CHECK_FALSE(is_open(write_end));
}

TEST_CASE("release gives the descriptor up without closing it", "[base]") {
  const auto [read_end, write_end] = make_pipe();
  int released = -1;
  {
    unique_fd owner(read_end);
    released = owner.release();
    CHECK_FALSE(owner.valid());
  }
  CHECK(released == read_end);
  CHECK(is_open(read_end));
  ::close(read_end);
  ::close(write_end);
}

TEST_CASE("reset closes the descriptor held and takes the new one", "[base]") {
  const auto [read_end, write_end] = make_pipe();
  unique_fd owner(read_end);
  owner.reset(write_end);
  CHECK_FALSE(is_open(read_end));
  CHECK(owner.get() == write_end);
  owner.reset(write_end);  // the same descriptor again: kept, not closed
  CHECK(is_open(write_end));
  owner.reset();
  CHECK_FALSE(owner.valid());
  CHECK_FALSE(is_open(write_end));
}
