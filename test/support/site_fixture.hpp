#pragma once
// Test support for the serve unit tests: the sources under `folder`/src archived in-process
// (archive::build, `codecs` as given, with host folders if asked) into `folder`/site.cdb, and
// the options that open it as the server does (or the site itself).

#include <memory>
#include <vector>

#include "archive/builder.hpp"
#include "serve/options.hpp"
#include "serve/site.hpp"
#include "support/temp_folder.hpp"

namespace kawipiko::test {

inline serve::options archived_options(const temp_folder& folder,
                                       std::vector<archive::codec_setting> codecs,
                                       bool host_folders = false) {
  archive::build_options options;
  options.sources = (folder / "src").string();
  options.archive = (folder / "site.cdb").string();
  options.jobs = 2;
  options.codecs = std::move(codecs);
  options.host_folders = host_folders;
  (void)archive::build(options);
  serve::options opts;
  opts.archive = options.archive;
  return opts;
}

inline std::unique_ptr<serve::site> archived_site(const temp_folder& folder,
                                                  std::vector<archive::codec_setting> codecs) {
  return std::make_unique<serve::site>(archived_options(folder, std::move(codecs)));
}

}  // namespace kawipiko::test
