#include "serve/header_lists.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace serve = kawipiko::serve;

TEST_CASE("header lists find a block's lines, and a run of its whole lines, by where they start",
          "[serve]") {
  const std::string block =
      "ETag: \"abc\"\r\nCache-Control:  no-cache \r\nX-Made-Up: Value\r\nContent-Length: 5\r\n";
  serve::header_lists lists;
  lists.add(block);
  REQUIRE(lists.size() == 4);
  const auto all = lists.find(block);
  REQUIRE(all.size() == 4);
  CHECK(all[0].name == "etag");
  CHECK(all[0].value == "\"abc\"");
  CHECK(all[1].name == "cache-control");
  CHECK(all[1].value == "no-cache");
  CHECK(all[2].name == "x-made-up");
  CHECK(all[2].value == "Value");
  CHECK(all[3].last);
  CHECK_FALSE(all[2].last);

  const std::string_view view(block);
  const auto second = view.find("Cache-Control");
  const auto run = lists.find(view.substr(second, view.find("Content-Length") - second));
  REQUIRE(run.size() == 2);
  CHECK(run[0].name == "cache-control");
  CHECK(run[1].name == "x-made-up");
  CHECK(lists.find(view.substr(0, second)).size() == 1);  // a 304-like prefix
  CHECK(lists.find(view.substr(1)).empty());              // not a line's start
  CHECK(lists.find({}).empty());
  CHECK(serve::header_lists().find(block).empty());

  lists.add(block);  // again: nothing new
  CHECK(lists.size() == 4);
}

TEST_CASE("header lists added all at once find the same lines as added one by one, however many",
          "[serve]") {
  std::vector<std::string> texts;
  for (int i = 0; i < 5000; ++i) {
    texts.push_back("ETag: \"" + std::to_string(i) +
                    "\"\r\nContent-Length: " + std::to_string(i % 97) + "\r\n");
  }
  std::vector<std::string_view> blocks(texts.begin(), texts.end());
  serve::header_lists together, one_by_one;
  together.add_all(blocks);
  for (const auto block : blocks) one_by_one.add(block);
  REQUIRE(together.size() == 10000);
  REQUIRE(one_by_one.size() == 10000);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    INFO(i);
    for (const auto* lists : {&together, &one_by_one}) {
      const auto found = lists->find(blocks[i]);
      REQUIRE(found.size() == 2);
      CHECK(found[0].value == "\"" + std::to_string(i) + "\"");
      CHECK(found[1].value == std::to_string(i % 97));
      const auto length = blocks[i].substr(blocks[i].find("Content-Length"));
      REQUIRE(lists->find(length).size() == 1);
      CHECK(lists->find(length)[0].start == length.data());
    }
  }
}
