"""The paper's figures set beside ours: matching folders to families, the table."""

from epic.lab.eval.paper_figures import PAPER_SSIM, beside_the_paper, family_of


def test_folder_names_match_their_family():
    assert family_of("FlatVelA-test11") == "flatvel-a"
    assert family_of("flatfault-a") == "flatfault-a"
    assert family_of("CurveVelA-test11") == "curvevel-a"
    assert family_of("curvevel-b") is None  # the paper's B figures are not held here
    assert family_of("style-a") is None


def test_the_table_puts_each_model_beside_its_paper_figure():
    folders = [{"name": "FlatVelA-test11"}, {"name": "mine"}, {"name": "CurveVelA-test11"}]
    entries = [
        {"checkpoint": "e.pt", "model": "epic", "folders": [{"ssim": 0.95}, {}, {"ssim": 0.8}]},
        {
            "checkpoint": "i.pt",
            "model": "inversionnet",
            "folders": [{"ssim": 0.9}, {}, {"ssim": 0.7}],
        },
    ]
    lines = beside_the_paper(folders, entries)
    table = [line for line in lines if line.startswith("| `")]
    assert table[0].split(" | ")[2:] == ["0.9500", "0.9987", "0.8000", "0.9198 |"]
    assert f"{PAPER_SSIM['curvevel-a']['inversionnet']:.4f}" in table[1]
    assert any(">= 0.93" in line and ">= 0.75" in line for line in lines)
    assert beside_the_paper([{"name": "mine"}], entries) == []
