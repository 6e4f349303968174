// Precompiled header for gradlens' own .cpp files (never included by a
// public header). Parsing <torch/torch.h> costs ~35 s per translation unit
// on a 2-core machine; compiling it once and reusing it is the single biggest
// build-time saving.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>
