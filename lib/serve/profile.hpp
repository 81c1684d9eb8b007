#pragma once
// --profile-cpu and --profile-mem: pprof-format profiles from gperftools, the format users of the
// original tool read with `pprof`. The libraries are loaded at run time (libprofiler for CPU;
// for the heap, the process re-executes itself with tcmalloc preloaded, since the heap profiler
// needs tcmalloc to be the allocator from the first allocation), so a normal run links neither.

#include <string>

namespace kawipiko::serve {

class profiler {
 public:
  // Starts what is asked (nothing for empty paths). May re-execute the process (heap profile)
  // and so never return. Throws std::runtime_error when gperftools is not installed.
  profiler(const std::string& cpu_path, const std::string& mem_path, char** argv);
  // Stops the profilers and writes the profiles.
  ~profiler();
  profiler(const profiler&) = delete;
  profiler& operator=(const profiler&) = delete;

 private:
  void* cpu_library_ = nullptr;
  bool heap_ = false;
};

}  // namespace kawipiko::serve
