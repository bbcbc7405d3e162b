// `gdn`: Gated DeltaNet. The DeltaNet layer (deltanet.h) plus the decay gate
// g = -exp(A_log) * softplus(a_proj(x) + dt_bias), applied to the state before
// every delta-rule update, in both the chunked and the recurrent form.
// Defaults follow fla's GatedDeltaNet: 6 heads, dk = 256, dv = 512, output gate on.
#pragma once
#include "supernet/ops/deltanet.h"

namespace flashnas {

OpKind gdn_kind();

}  // namespace flashnas
