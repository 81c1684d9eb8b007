#include "serve/confinement.hpp"

#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "support/temp_folder.hpp"

namespace serve = kawipiko::serve;
using kawipiko::base::invalid_option;
using kawipiko::test::temp_folder;

namespace {

serve::options with_archive() {
  serve::options opts;
  opts.archive = "site.cdb";
  return opts;
}

}  // namespace

TEST_CASE("a --user, --group, --sandbox and --limit-memory that can be honoured pass", "[serve]") {
  auto opts = with_archive();
  opts.confine = {"nobody", "nogroup", true, 64};
  CHECK_NOTHROW(serve::validate_confinement(opts));
  CHECK_NOTHROW(serve::validate_confinement(with_archive()));
}

TEST_CASE("confinement flags that cannot be honoured are refused naming the flag", "[serve]") {
  auto opts = with_archive();
  SECTION("--group alone") {
    opts.confine.group = "nogroup";
    CHECK_THROWS_MATCHES(serve::validate_confinement(opts), invalid_option,
                         Catch::Message("--group needs --user"));
  }
  SECTION("an unknown user") {
    opts.confine.user = "kawipiko-no-such-user";
    CHECK_THROWS_MATCHES(serve::validate_confinement(opts), invalid_option,
                         Catch::Message("--user 'kawipiko-no-such-user': no such user"));
  }
  SECTION("a profile in the sandbox") {
    opts.confine.sandbox = true;
    opts.profile_cpu = "cpu.prof";
    CHECK_THROWS_MATCHES(
        serve::validate_confinement(opts), invalid_option,
        Catch::Message("--sandbox and --profile-cpu or --profile-mem exclude each other (a "
                       "profile is written at exit, and the sandbox lets nothing be written)"));
  }
  SECTION("a memory limit out of range") {
    for (const std::size_t mib : {std::size_t{0}, std::size_t{1} << 21}) {
      opts.confine.memory_mib = mib;
      CHECK_THROWS_MATCHES(serve::validate_confinement(opts), invalid_option,
                           Catch::Message("--limit-memory must be 1 to 1048576 (MiB)"));
    }
  }
}

TEST_CASE("an archive that does not fit in --limit-memory is refused before anything opens",
          "[serve]") {
  temp_folder folder;
  auto opts = with_archive();
  opts.archive = folder.write("big.cdb", std::string(2 * 1024 * 1024, 'x')).string();
  opts.confine.memory_mib = 1;
  CHECK_THROWS_MATCHES(serve::prepare_confinement(opts), std::runtime_error,
                       Catch::Message("archive '" + opts.archive +
                                      "' (2.1 MB) does not fit in --limit-memory 1 MiB"));
}

TEST_CASE("the files opened again later are the archives, then the certificate files", "[serve]") {
  auto opts = with_archive();
  opts.hosts = {{"example.com", "example.cdb"}};
  opts.tls.bind_tls = "127.0.0.1:8443";
  opts.tls.certificates = {{{}, "cert.pem", "key.pem"}, {"other.pem", {}, {}}};
  CHECK(serve::files_read_later(opts) ==
        std::vector<std::string>{"site.cdb", "example.cdb", "cert.pem", "key.pem", "other.pem"});
  opts.tls = {};
  opts.tls.bind_tls = "127.0.0.1:8443";
  opts.tls.self_signed = true;  // made in memory: nothing to re-read
  CHECK(serve::files_read_later(opts) == std::vector<std::string>{"site.cdb", "example.cdb"});
  CHECK(serve::files_written_later(opts).empty());
  opts.access_log = "/var/log/kawipiko/access.log";  // SIGUSR1 reopens it under its name
  CHECK(serve::files_written_later(opts) ==
        std::vector<std::string>{"/var/log/kawipiko/access.log"});
  opts.access_log = "-";
  CHECK(serve::files_written_later(opts).empty());
}
