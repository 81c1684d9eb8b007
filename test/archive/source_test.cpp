#include "archive/source.hpp"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "support/temp_folder.hpp"

namespace archive = kawipiko::archive;
namespace fs = std::filesystem;
using kawipiko::test::temp_folder;

namespace {

std::vector<std::string> paths_of(const archive::source_tree& tree) {
  std::vector<std::string> paths;
  for (const auto& file : tree.files) paths.push_back(file.path);
  return paths;
}

}  // namespace

TEST_CASE("the walk lists files and folders sorted bytewise, depth first", "[archive]") {
  temp_folder root;
  for (const char* name : {"b.txt", "a/z.txt", "a/b/c.txt", "A.txt", "a.txt", "a b.txt", "é.txt"}) {
    root.write(name, name);
  }
  fs::create_directories(root / "empty");
  const auto tree = archive::walk(root.str());
  CHECK(paths_of(tree) == std::vector<std::string>{"/A.txt", "/a b.txt", "/a.txt", "/a/b/c.txt",
                                                   "/a/z.txt", "/b.txt", "/é.txt"});
  CHECK(tree.folders == std::vector<std::string>{"/", "/a/", "/a/b/", "/empty/"});
  for (const auto& file : tree.files) {
    INFO(file.path);
    CHECK(file.file == root.str() + file.path);
    CHECK(file.size == file.path.size() - 1);  // each file holds its own relative name
  }
}

TEST_CASE("a trailing slash on the root changes nothing", "[archive]") {
  temp_folder root;
  root.write("a/b.txt", "b");
  const auto plain = archive::walk(root.str());
  const auto slashed = archive::walk(root.str() + "//");
  CHECK(paths_of(slashed) == paths_of(plain));
  REQUIRE(slashed.files.size() == 1);
  CHECK(slashed.files[0].file == root.str() + "/a/b.txt");
}

TEST_CASE("dotfiles are skipped, except a top-level .well-known", "[archive]") {
  temp_folder root;
  for (const char* name : {".hidden", ".git/config", "docs/.env", "docs/.well-known/x.txt",
                           ".well-known/security.txt", ".well-known/.secret", "docs/page.html"}) {
    root.write(name, "x");
  }
  const auto tree = archive::walk(root.str());
  CHECK(paths_of(tree) == std::vector<std::string>{"/.well-known/security.txt", "/docs/page.html"});
  CHECK(tree.folders == std::vector<std::string>{"/", "/.well-known/", "/docs/"});
}

TEST_CASE("editor leftovers (*~ and #*#) are skipped, other names with # or ~ are not",
          "[archive]") {
  temp_folder root;
  for (const char* name : {"page.html~", "#page.html#", "docs/notes~", "docs/#x#", "#", "#tag",
                           "tag#", "~home", "a~b"}) {
    root.write(name, "x");
  }
  CHECK(paths_of(archive::walk(root.str())) ==
        std::vector<std::string>{"/#", "/#tag", "/a~b", "/tag#", "/~home"});
}

TEST_CASE("symlinks to files and folders are followed, under the link's name", "[archive]") {
  temp_folder root, elsewhere;
  const auto target = elsewhere.write("outside.txt", "from elsewhere");
  elsewhere.write("shared/inner.txt", "inner");
  fs::create_symlink(target, root / "link.txt");
  fs::create_directory_symlink(elsewhere / "shared", root / "shared");
  const auto tree = archive::walk(root.str());
  CHECK(paths_of(tree) == std::vector<std::string>{"/link.txt", "/shared/inner.txt"});
  CHECK(tree.folders == std::vector<std::string>{"/", "/shared/"});
  REQUIRE(tree.files.size() == 2);
  CHECK(tree.files[0].size == 14);
}

TEST_CASE("what cannot be published stops the walk with a message naming it", "[archive][errors]") {
  temp_folder root;
  root.write("docs/fine.txt", "fine");

  SECTION("a dangling symlink") {
    fs::create_symlink(root / "missing", root / "docs/dangling");
    CHECK_THROWS_WITH(
        archive::walk(root.str()),
        Catch::Contains("dangling symlink") && Catch::Contains((root / "docs/dangling").string()));
  }
  SECTION("a symlink loop through a folder") {
    fs::create_directory_symlink(root / "docs", root / "docs/again");
    CHECK_THROWS_WITH(
        archive::walk(root.str()),
        Catch::Contains("symlink loop") && Catch::Contains((root / "docs/again").string()));
  }
  SECTION("a FIFO") {
    REQUIRE(::mkfifo((root / "docs/pipe").c_str(), 0600) == 0);
    CHECK_THROWS_WITH(archive::walk(root.str()),
                      Catch::Contains("FIFO") && Catch::Contains((root / "docs/pipe").string()));
  }
  SECTION("a name that is not UTF-8") {
    root.write("docs/bad\xff.txt", "x");
    CHECK_THROWS_WITH(archive::walk(root.str()),
                      Catch::Contains("not valid UTF-8") && Catch::Contains("docs/bad"));
  }
  SECTION("a name with a control character") {
    root.write("docs/new\nline", "x");
    CHECK_THROWS_WITH(archive::walk(root.str()),
                      Catch::Contains("control character") && Catch::Contains("docs/new"));
  }
  SECTION("a root that is missing or not a folder") {
    CHECK_THROWS_WITH(archive::walk((root / "nope").string()),
                      Catch::Contains((root / "nope").string()));
    CHECK_THROWS_WITH(archive::walk((root / "docs/fine.txt").string()),
                      Catch::Contains("not a folder") && Catch::Contains("fine.txt"));
  }
}

TEST_CASE("the file named by skip (the target archive) is left out, wherever it sits",
          "[archive]") {
  temp_folder root;
  root.write("index.html", "home");
  const auto archive_file = root.write("out/site.cdb", "an archive");
  fs::create_symlink(archive_file, root / "alias.cdb");  // the same file under another name
  struct stat info {};
  REQUIRE(::stat(archive_file.c_str(), &info) == 0);
  const archive::skip_identity skip{static_cast<std::uint64_t>(info.st_dev),
                                    static_cast<std::uint64_t>(info.st_ino)};
  const auto tree = archive::walk(root.str(), skip);
  CHECK(paths_of(tree) == std::vector<std::string>{"/index.html"});
  CHECK(tree.folders == std::vector<std::string>{"/", "/out/"});
  CHECK(paths_of(archive::walk(root.str())) ==
        std::vector<std::string>{"/alias.cdb", "/index.html", "/out/site.cdb"});
}

TEST_CASE(
    "host folders are the top-level folders, named by host in key order, each walked from its "
    "own root",
    "[archive][hosts]") {
  temp_folder root, elsewhere;
  root.write("a.test/index.html", "a");
  root.write("a.test-b/index.html", "ab");
  root.write("*.B.test/index.html", "b");
  root.write("_default/index.html", "rest");
  root.write(".git/config", "skipped");
  elsewhere.write("index.html", "linked");
  fs::create_directory_symlink(elsewhere.path(), root / "www.a.test");
  const auto hosts = archive::list_host_folders(root.str() + "/");
  std::vector<std::string> names;
  for (const auto& h : hosts) names.push_back(h.host);
  CHECK(names ==
        std::vector<std::string>{"*.b.test", "_default", "a.test-b", "a.test", "www.a.test"});
  CHECK(hosts[1].file == root.str() + "/_default");
  // A host folder is a root: its `.well-known` is published.
  root.write("a.test/.well-known/security.txt", "contact");
  CHECK(paths_of(archive::walk(hosts[3].file)) ==
        std::vector<std::string>{"/.well-known/security.txt", "/index.html"});
  CHECK(paths_of(archive::walk(hosts[4].file)) == std::vector<std::string>{"/index.html"});
}
