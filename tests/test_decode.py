import pytest
from PIL import Image

from indexer.decode import DecodeError, content_hash, decode_image, register_extra_formats
from testing.photos import jpeg_bytes, scene, write_hostile_files, write_odd_but_valid


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory):
    return write_odd_but_valid(tmp_path_factory.mktemp("odd"))


@pytest.mark.parametrize("name", ["cmyk", "grey16", "palette_alpha", "rgba", "animated_gif",
                                  "animated_webp", "bmp", "tiff", "non_utf8"])  # fmt: skip
def test_awkward_modes_become_rgb(odd_files, name):
    decoded = decode_image(odd_files[name].read_bytes())
    assert decoded.image.mode == "RGB"
    assert decoded.image.size[0] > 0


def test_sixteen_bit_grey_is_scaled_not_clipped(odd_files):
    decoded = decode_image(odd_files["grey16"].read_bytes())
    assert decoded.image.getpixel((0, 0)) == (155, 155, 155)  # 40000 / 65535 * 255


def test_transparency_is_laid_on_white(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (10, 10), (255, 0, 0, 0)).save(path)
    assert decode_image(path.read_bytes()).image.getpixel((5, 5)) == (255, 255, 255)


def test_exif_orientation_is_applied(odd_files):
    decoded = decode_image(odd_files["rotated"].read_bytes())
    assert (decoded.width, decoded.height) == (400, 600)
    assert decoded.image.size == (400, 600)


def test_large_jpeg_is_decoded_in_draft_mode_but_reports_its_real_size():
    data = jpeg_bytes(scene(1, (4000, 3000)))
    decoded = decode_image(data, min_side=480)
    assert (decoded.width, decoded.height) == (4000, 3000)
    assert 480 <= min(decoded.image.size) < 1000


@pytest.mark.parametrize("name, reason", [
    ("truncated", "truncated"), ("random_bytes", "not an image"), ("bomb", "decompression bomb"),
    ("bomb_warning", "decompression bomb"), ("text_as_image", "not an image"),
])  # fmt: skip
def test_hostile_files_raise_one_line_decode_errors(tmp_path, name, reason):
    path = write_hostile_files(tmp_path)[name]
    with pytest.raises(DecodeError) as error:
        decode_image(path.read_bytes())
    assert reason in str(error.value)
    assert "\n" not in str(error.value)


def test_heic_decodes_where_the_plugin_is_installed(tmp_path):
    if "heif" not in register_extra_formats():
        pytest.skip("pillow-heif not installed")
    path = tmp_path / "photo.heic"
    try:
        scene(3, (128, 96)).save(path, format="HEIF")
    except (OSError, KeyError, ValueError) as error:
        pytest.skip(f"this pillow-heif cannot encode HEIC: {error}")
    assert decode_image(path.read_bytes()).image.size == (128, 96)


def test_content_hash_is_stable_and_content_based():
    assert content_hash(b"abc") == content_hash(b"abc") != content_hash(b"abd")
    assert len(content_hash(b"")) == 32


def test_exif_date_taken_is_read(tmp_path):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2021:07:04 18:30:00"
    path = tmp_path / "dated.jpg"
    scene(2, (64, 48)).save(path, exif=exif)
    assert decode_image(path.read_bytes()).taken_at == "2021-07-04T18:30:00"
    assert decode_image(jpeg_bytes(scene(2, (64, 48)))).taken_at is None


def test_perceptual_hash_survives_resizing_but_tells_scenes_apart():
    from indexer.decode import perceptual_hash

    def distance(a, b):
        return bin(int(perceptual_hash(a), 16) ^ int(perceptual_hash(b), 16)).count("1")

    original = scene(4, (640, 480))
    resized = decode_image(jpeg_bytes(original.resize((320, 240)), quality=60)).image
    assert distance(original, resized) <= 6
    assert distance(original, scene(5, (640, 480))) > 16
