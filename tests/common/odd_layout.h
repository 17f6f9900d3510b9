// A small parameter layout for the ZeRO tests on one process and on two ranks: 213 elements,
// which 2 and 8 ranks do not divide (3 do), in tensors of both decay kinds that the shard
// boundaries cut in the middle.
#pragma once

#include "model/param_layout.h"

namespace tandem::testing {

inline model::ParamLayout odd_param_layout() {
    using model::ParamInit;
    using model::ParamRole;
    model::ParamLayout layout;
    layout.add("embed.weight", Shape{10, 9}, ParamRole::Embedding, ParamInit::Normal, 0.02f);
    layout.add("proj.weight", Shape{11, 11}, ParamRole::Matrix, ParamInit::Normal, 0.02f);
    layout.add("norm.weight", Shape{2}, ParamRole::Norm, ParamInit::Ones);
    return layout;
}

}  // namespace tandem::testing
