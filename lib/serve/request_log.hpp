#pragma once
// The lines an answered request may leave on stderr, the same for every protocol: with --debug
// one line per request, and always one for a corrupt archive record met while answering.

#include <chrono>
#include <string_view>

#include "serve/handler.hpp"

namespace kawipiko::serve {

using log_clock = std::chrono::steady_clock;

// "[debug] GET /target 200 gzip 1234 17us HTTP/1.1" when `debug`; the error line when the answer
// met a corrupt record. `req` is null for a request that could not be parsed (its method and
// target print as "-"). `started`: when the request was taken up.
void log_answer(std::string_view protocol, const request* req, const response_info& info,
                log_clock::time_point started, bool debug);

}  // namespace kawipiko::serve
