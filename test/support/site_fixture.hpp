#pragma once
// Test support for the serve unit tests: the sources under `folder`/src archived in-process
// (archive::build, `codecs` as given) and opened as the server opens them.

#include <memory>
#include <vector>

#include "archive/builder.hpp"
#include "serve/options.hpp"
#include "serve/site.hpp"
#include "support/temp_folder.hpp"

namespace kawipiko::test {

inline std::unique_ptr<serve::site> archived_site(const temp_folder& folder,
                                                  std::vector<archive::codec_setting> codecs) {
  archive::build_options options;
  options.sources = (folder / "src").string();
  options.archive = (folder / "site.cdb").string();
  options.jobs = 2;
  options.codecs = std::move(codecs);
  (void)archive::build(options);
  serve::options opts;
  opts.archive = options.archive;
  return std::make_unique<serve::site>(opts);
}

}  // namespace kawipiko::test
