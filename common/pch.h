// Precompiled header shared by every flashnas target: the heavy, stable
// third-party headers only. Project headers never go here.
#pragma once
#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
