#!/usr/bin/env bash
# Builds MicroPython's QEMU firmware (ports/qemu) with this checkout's microrl package frozen in, to
# count instructions of microrl on microcontroller cores without the boards.
#
#   firmware/build_qemu.sh MICROPYTHON_DIR OUT_DIR [ULAB_DIR]
#
# MICROPYTHON_DIR and ULAB_DIR are your own source checkouts (micropython, micropython-ulab); nothing
# is downloaded. Writes OUT_DIR/manifest.py (includes <this checkout>/manifest.py, the package's
# manifest), one build directory per firmware (OUT_DIR/build-<core>-<backend>-<heap>) and the
# firmware itself as OUT_DIR/<core>-<backend>-<heapbytes>.elf. Re-running it re-freezes what changed
# in device/ and relinks: only the changed modules are recompiled.
#
# core -> MicroPython board and QEMU machine:
#   m0  BOARD=MICROBIT    Cortex-M0 (ARMv6-M, the RP2040's instruction set), soft float, native
#                         emitter and inline assembler switched on (as on a stock Pico)
#       qemu-system-arm -machine microbit -global nrf51-soc.flash-size=1048576
#                       -global nrf51-soc.sram-size=262144 ...
#   m3  BOARD=MPS2_AN385  Cortex-M3, soft float              qemu-system-arm -machine mps2-an385 ...
#   m7  BOARD=MPS2_AN500  Cortex-M7, single-precision hardware float (MICROPY_FLOAT_IMPL=float,
#                         SUPPORTS_HARDWARE_FP_SINGLE=1; the board's default is double)
#                                                            qemu-system-arm -machine mps2-an500 ...
#   common QEMU options: -nographic -monitor null -semihosting -icount shift=0 -serial pty -kernel ELF
# backend: pure = no ulab (microrl falls back to pure Python); ulab = USER_C_MODULES=ULAB_DIR
#          (built only when ULAB_DIR is given).
# heap bytes (MICROPY_HEAP_SIZE), after the board profiles they stand for:
#   m0: 196608 (rp2-pico)
#   m3: 196608 (rp2-pico), 460800 (rp2-pico2)
#   m7: 94208 (pyboard-v11), 112640 (esp32), 460800 (rp2-pico2), 4194304 (esp32s3 with PSRAM)
# The MPS2 machines run everything from a 4 MB RAM at address 0; a heap above 3 MB does not fit next
# to the code, so for those the RAM (.bss, heap included) is linked into the machines' 16 MB PSRAM
# (a linker script written into OUT_DIR), as an ESP32-S3 keeps its big heap in PSRAM.
#
# Environment:
#   HEAPS  override the heaps: space-separated entries, "core=N[,N...]" (e.g. "m0=196608 m7=94208");
#          only the cores named are built; a bare number applies to every core.
#   JOBS   parallel make jobs (default 2).
#
# Only main.c uses MICROPY_HEAP_SIZE, so a further heap of the same core and backend starts from a
# copy of the first heap's build directory with main.o removed.
# Needs arm-none-eabi-gcc with newlib (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi); runs with
# qemu-system-arm (Debian: qemu-system-arm).
set -euo pipefail

die() { echo "build_qemu.sh: $*" >&2; exit 2; }

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    die "usage: firmware/build_qemu.sh MICROPYTHON_DIR OUT_DIR [ULAB_DIR]"
fi

[ -f "$1/ports/qemu/Makefile" ] || die "$1 has no ports/qemu: give the path of a MicroPython source checkout"
MP_DIR=$(cd "$1" && pwd)
ULAB_DIR=
if [ $# -eq 3 ]; then
    [ -f "$3/code/micropython.mk" ] || die "$3 has no code/micropython.mk: give the path of a micropython-ulab checkout"
    ULAB_DIR=$(cd "$3" && pwd)
fi
command -v arm-none-eabi-gcc >/dev/null 2>&1 \
    || die "arm-none-eabi-gcc not found: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi (and qemu-system-arm to run the firmware)"

CHECKOUT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEVICE_DIR="$CHECKOUT/device"
[ -f "$DEVICE_DIR/microrl/__init__.py" ] || die "$DEVICE_DIR/microrl is missing: run the script from a microrl checkout"

mkdir -p "$2"
OUT_DIR=$(cd "$2" && pwd)
JOBS=${JOBS:-2}
QEMU_PORT="$MP_DIR/ports/qemu"

# Heaps per core, or the HEAPS override.
declare -A HEAP_LIST=([m0]="196608" [m3]="196608 460800" [m7]="94208 112640 460800 4194304")
if [ -n "${HEAPS:-}" ]; then
    declare -A OVERRIDE=()
    for entry in $HEAPS; do
        case "$entry" in
            m0=*|m3=*|m7=*) OVERRIDE[${entry%%=*}]="${OVERRIDE[${entry%%=*}]:-} ${entry#*=}" ;;
            *[!0-9]*|"") die "HEAPS entry '$entry' is neither core=N[,N...] (core m0, m3, m7) nor a number" ;;
            *) for c in m0 m3 m7; do OVERRIDE[$c]="${OVERRIDE[$c]:-} $entry"; done ;;
        esac
    done
    HEAP_LIST=()
    for c in "${!OVERRIDE[@]}"; do
        HEAP_LIST[$c]=$(echo "${OVERRIDE[$c]}" | tr ',' ' ')
        for h in ${HEAP_LIST[$c]}; do
            case "$h" in *[!0-9]*) die "HEAPS: '$h' is not a number of bytes" ;; esac
        done
    done
fi

# The frozen-manifest rule wants the micropython-lib submodule; nothing of it is used.
MPY_LIB="$MP_DIR/lib/micropython-lib"
if [ ! -d "$MPY_LIB" ] || [ -z "$(ls -A "$MPY_LIB")" ]; then
    mkdir -p "$MPY_LIB"
    echo placeholder > "$MPY_LIB/README.md"
    echo "created placeholder $MPY_LIB/README.md (the submodule is not used)"
fi
if [ ! -x "$MP_DIR/mpy-cross/build/mpy-cross" ]; then
    make -C "$MP_DIR/mpy-cross" -j"$JOBS"
fi

# Our manifest: the package of this checkout only (the qemu port has no boards/manifest.py).
MANIFEST="$OUT_DIR/manifest.py"
printf 'include("%s/manifest.py")\n' "$CHECKOUT" > "$MANIFEST"
# Linker scripts for heaps too big for the 4 MB RAM at 0: code, data and stack stay there, .bss goes
# to PSRAM (an385: after the ROMFS partition at 0x21000000; an500: before the one at 0x60C00000).
write_psram_ld() {  # $1 file, $2 origin
    cat > "$1" <<EOF
/* Written by microrl firmware/build_qemu.sh: mps2.ld with .bss (heap included) in PSRAM. */
MEMORY
{
    RAM : ORIGIN = 0x00000000, LENGTH = 4M
    PSRAM : ORIGIN = $2, LENGTH = 12M
}
REGION_ALIAS("ISR", RAM)
REGION_ALIAS("TEXT", RAM)
REGION_ALIAS("DATA", RAM)
REGION_ALIAS("BSS", PSRAM)
_estack = ORIGIN(RAM) + LENGTH(RAM);
INCLUDE "mcu/arm/cortex-m.ld"
EOF
}
BIG_HEAP=3145728

board_args() {  # $1 core, $2 backend, $3 heap -> make arguments, one per line
    local core=$1 backend=$2 heap=$3 cflags=""
    case "$core" in
        # The MICROBIT board compiles frozen native code (viper) for ARMv7-M, whose Thumb-2
        # instructions fault on the Cortex-M0: ARMv6-M code, as mpy-cross makes for an RP2040.
        m0) echo "BOARD=MICROBIT"; echo "MPY_CROSS_FLAGS=-march=armv6m"
            cflags="-DMICROPY_EMIT_THUMB=1 -DMICROPY_EMIT_INLINE_THUMB=1" ;;
        m3) echo "BOARD=MPS2_AN385" ;;
        m7) echo "BOARD=MPS2_AN500"; echo "MICROPY_FLOAT_IMPL=float"; echo "SUPPORTS_HARDWARE_FP_SINGLE=1" ;;
    esac
    if [ "$backend" = ulab ]; then
        echo "USER_C_MODULES=$ULAB_DIR"
        cflags="${cflags:+$cflags }-Wno-error"
    fi
    [ -n "$cflags" ] && echo "CFLAGS_EXTRA=$cflags"
    if [ "$heap" -gt "$BIG_HEAP" ]; then
        case "$core" in
            m3) write_psram_ld "$OUT_DIR/mps2-an385-psram.ld" 0x21400000; echo "LDSCRIPT=$OUT_DIR/mps2-an385-psram.ld" ;;
            m7) write_psram_ld "$OUT_DIR/mps2-an500-psram.ld" 0x60000000; echo "LDSCRIPT=$OUT_DIR/mps2-an500-psram.ld" ;;
        esac
    fi
    echo "MICROPY_HEAP_SIZE=$heap"
    echo "FROZEN_MANIFEST=$MANIFEST"
}

check_float() {  # $1 core, $2 build dir: the float arithmetic the interpreter compiled to
    local dis
    dis=$(arm-none-eabi-objdump -d "$2/py/objfloat.o")
    if [ "$1" = m7 ]; then
        grep -q 'vadd.f32' <<<"$dis" || { echo "build_qemu.sh: $2: no vadd.f32 in objfloat.o (not hard single float)" >&2; exit 1; }
        echo "hard single float"
    else
        grep -q '__aeabi_fadd' <<<"$dis" || { echo "build_qemu.sh: $2: no __aeabi_fadd in objfloat.o (not soft single float)" >&2; exit 1; }
        echo "soft single float"
    fi
}

BACKENDS="pure"
[ -n "$ULAB_DIR" ] && BACKENDS="pure ulab"
BUILT=()
for core in m0 m3 m7; do
    [ -n "${HEAP_LIST[$core]:-}" ] || continue
    for backend in $BACKENDS; do
        first=""
        for heap in ${HEAP_LIST[$core]}; do
            name="$core-$backend-$heap"
            build="$OUT_DIR/build-$name"
            if [ ! -d "$build" ] && [ -n "$first" ] && [ -f "$first/firmware.elf" ]; then
                # Same core and backend: reuse the objects, rebuild main.o (the heap) and relink.
                cp -a "$first" "$build"
                find "$build" -name '*.P' -exec sed -i "s#$first/#$build/#g" {} +
                rm -f "$build/main.o" "$build/firmware.elf"
            fi
            [ -n "$first" ] || first="$build"
            mapfile -t args < <(board_args "$core" "$backend" "$heap")
            echo "== $name: make ${args[*]}"
            start=$(date +%s)
            make -C "$QEMU_PORT" -j"$JOBS" BUILD="$build" "${args[@]}"
            kind=$(check_float "$core" "$build")
            cp "$build/firmware.elf" "$OUT_DIR/$name.elf"
            BUILT+=("$OUT_DIR/$name.elf ($kind, $(( $(date +%s) - start )) s)")
        done
    done
done

echo
echo "Built:"
printf '  %s\n' "${BUILT[@]}"
echo "Run: qemu-system-arm -machine MACHINE -nographic -monitor null -semihosting -icount shift=0 -serial pty -kernel $OUT_DIR/<core>-<backend>-<heap>.elf"
echo "  (m3: -machine mps2-an385)"
echo "  (m0: -machine microbit -global nrf51-soc.flash-size=1048576 -global nrf51-soc.sram-size=262144; m7: -machine mps2-an500)"
