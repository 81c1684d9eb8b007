#pragma once
// --limit-memory: an address-space limit for each process of the server (RLIMIT_AS, and
// RLIMIT_DATA for its heap), set at start before the archives are opened, and the check that they
// fit in it. A mapped archive takes its size of address space, one read into memory as much heap,
// so an archive that cannot fit is refused at start with one line instead of a bad_alloc later.

#include <cstddef>
#include <string>
#include <vector>

namespace kawipiko::serve {

// Bytes of address space this process has mapped now (/proc/self/statm); 0 if unknown.
[[nodiscard]] std::size_t mapped_bytes() noexcept;

// Throws std::runtime_error ("archive 'x.cdb' (90.0 MB) does not fit in --limit-memory 64 MiB")
// for the first of `archives` that, with those before it and what the process has mapped
// already, would take more than `mib` MiB. An archive that cannot be stat'ed is left for its open
// to report.
void check_archives_fit(const std::vector<std::string>& archives, std::size_t mib);

// Sets RLIMIT_AS and RLIMIT_DATA, soft and hard (for good), to `mib` MiB, or to the hard limit
// already in force if that is lower. Throws std::system_error if the kernel refuses.
void limit_memory(std::size_t mib);

}  // namespace kawipiko::serve
