/* aetherbus - Apache-2.0
 * ab_avro: placeholder until the module lands.
 */
#include "ab_err.h"
