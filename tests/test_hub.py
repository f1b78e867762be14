import pytest

from optimum_bengali import ModelError
from optimum_bengali.hub import push_to_hub


class FakeApi:
    calls = []

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create", repo_id, kw))

    def upload_folder(self, repo_id, folder_path, commit_message, repo_type):
        self.calls.append(("upload", repo_id, folder_path, commit_message))

        class Info:
            commit_url = f"https://hub.example/{repo_id}/commit/1"
        return Info()


def test_push_uploads_the_whole_folder(tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    (tmp_path / "config.json").write_text("{}")
    url = push_to_hub(tmp_path, "user/bn-emotion-q8", private=True, token="t")
    assert url.endswith("user/bn-emotion-q8/commit/1")
    kinds = [c[0] for c in FakeApi.calls]
    assert kinds == ["create", "upload"] and FakeApi.calls[0][2]["private"] is True
    assert FakeApi.calls[1][2] == str(tmp_path)


def test_push_refuses_a_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="no config.json"):
        push_to_hub(tmp_path, "user/x")
