#include "serve/memory_limit.hpp"

#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>

#include "support/forked_child.hpp"
#include "support/temp_folder.hpp"

namespace serve = kawipiko::serve;
using kawipiko::test::expect;
using kawipiko::test::in_child;
using kawipiko::test::temp_folder;

namespace {

constexpr std::size_t mebibyte = 1024 * 1024;

std::size_t mapped_mib() {
  return serve::mapped_bytes() / mebibyte + 1;
}

}  // namespace

TEST_CASE("what the process has mapped is measured", "[serve]") {
  CHECK(serve::mapped_bytes() > mebibyte);  // the binary and its libraries at least
}

TEST_CASE("an archive larger than --limit-memory is refused with its size and the limit",
          "[serve]") {
  temp_folder folder;
  const auto big = folder.write("big.cdb", std::string(3 * mebibyte, 'x')).string();
  CHECK_THROWS_MATCHES(
      serve::check_archives_fit({big}, 2), std::runtime_error,
      Catch::Message("archive '" + big + "' (3.1 MB) does not fit in --limit-memory 2 MiB"));
}

TEST_CASE("archives that fit with what is mapped already pass, and count together", "[serve]") {
  temp_folder folder;
  const auto one = folder.write("one.cdb", std::string(4 * mebibyte, 'x')).string();
  const auto two = folder.write("two.cdb", std::string(4 * mebibyte, 'y')).string();
  const std::size_t room = mapped_mib() + 6;  // one archive, not two
  CHECK_NOTHROW(serve::check_archives_fit({one}, room));
  CHECK_NOTHROW(serve::check_archives_fit({folder.str() + "/missing.cdb"}, room));
  CHECK_THROWS_WITH(serve::check_archives_fit({one, two}, room),
                    Catch::StartsWith("archive '" + two +
                                      "' (4.2 MB) does not fit in "
                                      "--limit-memory " +
                                      std::to_string(room) + " MiB (with the ") &&
                        Catch::EndsWith(" MiB the server has mapped before it)"));
}

TEST_CASE("the memory limit sets the address-space and data limits for good", "[serve]") {
  const auto outcome = in_child([] {
    serve::limit_memory(64 * 1024);
    rlimit as{}, data{};
    ::getrlimit(RLIMIT_AS, &as);
    ::getrlimit(RLIMIT_DATA, &data);
    const rlim_t wanted = rlim_t{64} * 1024 * mebibyte;
    bool held = expect(as.rlim_cur == wanted && as.rlim_max == wanted, "RLIMIT_AS");
    held &= expect(data.rlim_cur == wanted && data.rlim_max == wanted, "RLIMIT_DATA");
    return held ? 0 : 1;
  });
  INFO(outcome.errors);
  CHECK(outcome.exit_code == 0);
}
