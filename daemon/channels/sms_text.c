#include "sms_text.h"
