#!/usr/bin/env bash
# Sionna RT for the lent GPU machine (Python 3.12, PyTorch/JAX image, no TensorFlow, no package registry), packed
# into one archive that fits the device tool's 64 MiB working tree beside the repository (~16 MB):
# drjit, mitsuba with only the CUDA mono-polarized variant and the plugins Sionna RT's scenes load (ply, merge,
# diffuse, uniform, independent, rectangle, and a few more for safety), sionna-rt without its bundled scenes, and
# importlib_resources. device_build.py stands in for the notebook previewer's modules (ipywidgets, pythreejs,
# IPython). The device image provides numpy, scipy, xarray, pandas, matplotlib, tqdm and typing_extensions.
#
#   bash experiments/crossap/device_bundle.sh .gpu/site.tar.xz     # .gpu/ listed in .git/info/exclude
#   # on the device (carry .gpu and scenes/generated):
#   mkdir -p /tmp/site && tar xJf .gpu/site.tar.xz -C /tmp/site && export PYTHONPATH=/tmp/site:$PWD
set -euo pipefail
out=$(realpath -m "${1:?usage: device_bundle.sh OUT.tar.xz}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$work/wheels" \
    mitsuba==3.8.0 drjit==1.3.1 sionna-rt==1.2.2 importlib_resources==7.1.0
mkdir "$work/site"
for wheel in "$work"/wheels/*.whl; do unzip -q -o "$wheel" -d "$work/site"; done
cd "$work/site"
rm -rf drjit/include ./*.dist-info/RECORD
# sionna.rt.scenes must stay a package (scene.py imports it); its meshes are not needed
find sionna/rt/scenes -mindepth 1 ! -name '__init__.py' -exec rm -rf {} +
cd mitsuba
rm -rf include cmake mitsuba_stubs ./*.pyi data/srgb.coeff libIlmImfUtil-mitsuba.so
for variant in ./*_ad_*.so ./scalar_spectral*.so; do
    case "$variant" in ./cuda_ad_mono_polarized.*) ;; *) rm "$variant" ;; esac
done
keep=" box cube cylinder diffuse direct disk gaussian hdrfilm independent merge obj orthographic path perspective "
keep+="ply rectangle serialized sphere twosided uniform "
for plugin in plugins/*.so; do
    name=$(basename "$plugin" .so)
    [[ "$keep" == *" $name "* ]] || rm "$plugin"
done
cd "$work/site"
mkdir -p "$(dirname "$out")"
tar cf - . | xz -T2 -6 > "$out"
echo "$out: $(du -h "$out" | cut -f1)"
