/* aetherbus - Apache-2.0
 * ab_http: placeholder until the module lands.
 */
#include "ab_err.h"
