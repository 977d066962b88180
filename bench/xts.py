"""Payload cipher (aes-xts-plain64) throughput against ``openssl speed -evp aes-256-xts``.

Prints MB/s both ways at 512- and 4096-byte sectors and, last, one JSON line:
``{"xts_mb_s_4096": ..., "openssl_mb_s_4096": ..., "xts_fraction_of_openssl_4096": ...,
"xts_fraction_of_openssl_512": ...}``. Goal: the 4096 fraction >= 0.25.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _xts import best_of_both, ours_mb_s

from volumed.storage.luks2.xts import XtsCipher


def main() -> None:
    print(f"engine: {XtsCipher(os.urandom(64)).engine}")
    results: dict[str, float] = {}
    for sector_size in (512, 4096):
        encrypt, openssl = best_of_both(sector_size)
        decrypt = ours_mb_s(sector_size, decrypt=True)
        portable = ours_mb_s(sector_size, seconds=0.5, engine="cryptography")
        print(
            f"sector {sector_size:4}: encrypt {encrypt:8.0f} MB/s, decrypt {decrypt:8.0f} MB/s, "
            f"openssl {openssl:8.0f} MB/s, fraction {encrypt / openssl:.3f} "
            f"(portable cryptography engine {portable:.0f} MB/s, {portable / openssl:.3f})"
        )
        results[f"xts_mb_s_{sector_size}"] = round(encrypt, 1)
        results[f"openssl_mb_s_{sector_size}"] = round(openssl, 1)
        results[f"xts_fraction_of_openssl_{sector_size}"] = round(encrypt / openssl, 4)
    print(
        json.dumps(
            {
                "xts_mb_s_4096": results["xts_mb_s_4096"],
                "openssl_mb_s_4096": results["openssl_mb_s_4096"],
                "xts_fraction_of_openssl_4096": results["xts_fraction_of_openssl_4096"],
                "xts_fraction_of_openssl_512": results["xts_fraction_of_openssl_512"],
            }
        )
    )


if __name__ == "__main__":
    main()
