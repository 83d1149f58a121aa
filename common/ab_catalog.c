/* aetherbus - Apache-2.0
 * ab_catalog: placeholder until the module lands.
 */
#include "ab_err.h"
