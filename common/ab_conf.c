/* aetherbus - Apache-2.0
 * ab_conf: placeholder until the module lands.
 */
#include "ab_err.h"
