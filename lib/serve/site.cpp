#include "serve/site.hpp"

#include <stdexcept>
#include <string>

#include "base/error.hpp"

namespace kawipiko::serve {

namespace {

base::mapped_file open_file(const options& opts) {
  const auto how = opts.in_memory || opts.index_content ? base::mapped_file::mode::in_memory
                                                        : base::mapped_file::mode::mmap;
  base::mapped_file file(opts.archive, how);
  if (opts.preload) file.preload();
  return file;
}

archive::reader open_reader(const base::mapped_file& file) {
  try {
    return archive::reader(file.bytes());
  } catch (const std::exception& e) {
    base::throw_error("cannot serve", file.path(), e.what());
  }
}

}  // namespace

site::site(const options& opts) : file_(open_file(opts)), reader_(open_reader(file_)) {
  if (!opts.index_paths && !opts.index_content) return;
  // Every key that is a request path holds an entry; decode each once, now. A corrupt one is
  // left out of the index, so that a request for it meets the same 500 as without the index.
  std::error_code error;
  reader_.database().for_each(
      [&](std::string_view key, std::string_view value, std::size_t) {
        if (key.empty() || key.front() != '/') return;
        archive::entry entry;
        if (!archive::decode_entry(value, reader_.database(), entry)) return;
        index_.try_emplace(key, entry);  // the first record of a key wins, as in a CDB lookup
      },
      error);
  if (error) base::throw_error("cannot index", file_.path(), error.message());
}

archive::lookup_status site::find(std::string_view path, archive::entry& out) const noexcept {
  if (!index_.empty()) {
    const auto found = index_.find(path);
    if (found == index_.end()) {
      // Not indexed: missing, or a corrupt record the index left out; the archive says which.
      return reader_.find(path, out);
    }
    out = found->second;
    return archive::lookup_status::found;
  }
  return reader_.find(path, out);
}

}  // namespace kawipiko::serve
