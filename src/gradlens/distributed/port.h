// A free TCP port on the loopback interface, for the master port of ranks
// started on this machine (`gradlens launch`, the dist tests and benches).
#pragma once

namespace gradlens::distributed {

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice
/// when binding port 0). Another process may take it before it is used, so
/// callers still handle "address in use". Returns 0 when no socket could be
/// bound.
int free_loopback_port();

}  // namespace gradlens::distributed
