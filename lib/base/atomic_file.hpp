#pragma once
// A file written in full or not at all: it is created as a temp file beside the target (a
// dotfile, so a tree walk never publishes it), and commit() flushes, fsyncs, gives it the usual
// permissions and renames it over the target, then fsyncs the folder. Destroyed without
// commit(), it removes the temp file: a failed run leaves the previous target untouched.

#include <cstdio>
#include <string>

namespace kawipiko::base {

class atomic_file {
 public:
  // Creates the temp file. Throws std::system_error naming the target.
  explicit atomic_file(const std::string& target);
  ~atomic_file();
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;

  [[nodiscard]] std::FILE* file() const { return file_; }

  // Makes the written bytes the target. Throws std::system_error naming the target.
  void commit();

 private:
  std::string target_;
  std::string folder_;
  std::string path_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

}  // namespace kawipiko::base
