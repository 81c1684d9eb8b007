#include "base/atomic_file.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "support/temp_folder.hpp"

namespace fs = std::filesystem;
using kawipiko::base::atomic_file;
using kawipiko::test::read_file;
using kawipiko::test::temp_folder;

namespace {

// The names in `folder`, sorted.
std::vector<std::string> names_in(const fs::path& folder) {
  std::vector<std::string> names;
  for (const auto& item : fs::directory_iterator(folder)) {
    names.push_back(item.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

void write(const atomic_file& file, const std::string& bytes) {
  REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), file.file()) == bytes.size());
}

}  // namespace

TEST_CASE("commit renames the written bytes over the target", "[base]") {
  temp_folder folder;
  const auto target = folder.write("site.cdb", "old");
  const std::string content = kawipiko::test::compressible_text(1 << 20, 4);
  atomic_file file(target.string());
  write(file, content);

  // Until commit, the target is the old file and the new bytes sit in a dotfile beside it.
  CHECK(read_file(target) == "old");
  const auto names = names_in(folder.path());
  REQUIRE(names.size() == 2);
  CHECK(names[0].starts_with(".site.cdb.tmp-"));
  CHECK(names[1] == "site.cdb");
  struct stat temp {};
  REQUIRE(::stat((folder / names[0]).c_str(), &temp) == 0);

  file.commit();
  CHECK(read_file(target) == content);
  CHECK(names_in(folder.path()) == std::vector<std::string>{"site.cdb"});
  struct stat committed {};
  REQUIRE(::stat(target.c_str(), &committed) == 0);
  CHECK(committed.st_ino == temp.st_ino);  // renamed into place, not copied over
}

TEST_CASE("commit creates a target that did not exist, with the usual permissions", "[base]") {
  temp_folder folder;
  const auto target = folder / "new.cdb";
  {
    atomic_file file(target.string());
    write(file, "fresh");
    file.commit();
  }
  CHECK(read_file(target) == "fresh");
  const mode_t mask = ::umask(0);
  ::umask(mask);
  struct stat info {};
  REQUIRE(::stat(target.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == (0666 & ~mask));  // not mkstemp's 0600
}

TEST_CASE("destruction without commit leaves the old file untouched and no temp file", "[base]") {
  temp_folder folder;
  const auto target = folder.write("site.cdb", "old");
  {
    atomic_file file(target.string());
    write(file, "half written");
    REQUIRE(names_in(folder.path()).size() == 2);
  }
  CHECK(read_file(target) == "old");
  CHECK(names_in(folder.path()) == std::vector<std::string>{"site.cdb"});

  SECTION("nor creates a target that did not exist") {
    const auto missing = folder / "never.cdb";
    { const atomic_file file(missing.string()); }
    CHECK_FALSE(fs::exists(missing));
    CHECK(names_in(folder.path()) == std::vector<std::string>{"site.cdb"});
  }
}

TEST_CASE("a target in a folder that cannot hold the temp file is refused, naming it",
          "[base][errors]") {
  temp_folder folder;
  const auto target = folder / "missing" / "site.cdb";
  CHECK_THROWS_AS(atomic_file(target.string()), std::system_error);
  CHECK_THROWS_WITH(atomic_file(target.string()), Catch::Contains(target.string()));
}
