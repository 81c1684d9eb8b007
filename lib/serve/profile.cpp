#include "serve/profile.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/error.hpp"

namespace kawipiko::serve {

namespace {

constexpr const char* cpu_library = "libprofiler.so.0";
constexpr const char* heap_library = "libtcmalloc.so.4";
constexpr const char* heap_marker = "KAWIPIKO_HEAP_PROFILE";

template <class Function>
Function symbol(void* library, const char* name) {
  void* address = ::dlsym(library, name);
  if (address == nullptr) {
    throw std::runtime_error(std::string("gperftools has no ") + name + " (" + ::dlerror() + ")");
  }
  return reinterpret_cast<Function>(address);
}

}  // namespace

profiler::profiler(const std::string& cpu_path, const std::string& mem_path, char** argv) {
  if (!mem_path.empty()) {
    if (std::getenv(heap_marker) == nullptr) {
      // Start again with tcmalloc preloaded. The marker keeps this from looping.
      if (::dlopen(heap_library, RTLD_NOW | RTLD_NOLOAD) == nullptr &&
          ::dlopen(heap_library, RTLD_NOW) == nullptr) {
        throw std::runtime_error(std::string("--profile-mem needs ") + heap_library +
                                 " (Debian package libgoogle-perftools4)");
      }
      std::string preload = heap_library;
      if (const char* existing = std::getenv("LD_PRELOAD")) preload += std::string(":") + existing;
      ::setenv("LD_PRELOAD", preload.c_str(), 1);
      ::setenv(heap_marker, "1", 1);
      // argv is the serve command's own (argv[0] names the command): the applet name
      // "kawipiko-server" makes the binary run `serve` with the same options.
      std::vector<char*> again{const_cast<char*>("kawipiko-server")};
      for (char** arg = argv + 1; *arg != nullptr; ++arg) again.push_back(*arg);
      again.push_back(nullptr);
      ::execv("/proc/self/exe", again.data());
      base::throw_errno(errno, "cannot re-execute for --profile-mem", "/proc/self/exe");
    }
    using start_fn = void (*)(const char*);
    start_fn start = symbol<start_fn>(RTLD_DEFAULT, "HeapProfilerStart");
    start(mem_path.c_str());
    heap_ = true;
  }
  if (!cpu_path.empty()) {
    cpu_library_ = ::dlopen(cpu_library, RTLD_NOW);
    if (cpu_library_ == nullptr) {
      throw std::runtime_error(std::string("--profile-cpu needs ") + cpu_library +
                               " (Debian package libgoogle-perftools4)");
    }
    using start_fn = int (*)(const char*);
    if (symbol<start_fn>(cpu_library_, "ProfilerStart")(cpu_path.c_str()) == 0) {
      base::throw_error("cannot start the CPU profiler writing to", cpu_path);
    }
  }
}

profiler::~profiler() {
  if (cpu_library_ != nullptr) {
    using stop_fn = void (*)();
    if (void* stop = ::dlsym(cpu_library_, "ProfilerStop")) reinterpret_cast<stop_fn>(stop)();
  }
  if (heap_) {
    using dump_fn = void (*)(const char*);
    using stop_fn = void (*)();
    if (void* dump = ::dlsym(RTLD_DEFAULT, "HeapProfilerDump")) {
      reinterpret_cast<dump_fn>(dump)("exit");
    }
    if (void* stop = ::dlsym(RTLD_DEFAULT, "HeapProfilerStop")) reinterpret_cast<stop_fn>(stop)();
  }
}

}  // namespace kawipiko::serve
