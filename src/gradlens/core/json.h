// Reading optional fields of JSON written by gradlens (manifests, audits):
// older files lack some fields and damaged ones may hold other types.
#pragma once

#include <nlohmann/json.hpp>

namespace gradlens::core {

/// j[key] as T when present, not null and convertible; `fallback` otherwise.
template <typename T>
T json_value_or(const nlohmann::json& j, const char* key, T fallback) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    return fallback;
  }
}

}  // namespace gradlens::core
