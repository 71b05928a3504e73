"""The Hub API's route handlers, mixed into `LocalHub`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import shutil
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, quote

from .server import Request, Response
from .storage import (
    SHA256_HEX,
    Commit,
    HubError,
    Repo,
    TreeEntry,
    parse_commit_payload,
    parse_range,
    upload_mode,
    validate_path,
    validate_ref_name,
)


class RouteHandlers:
    """One ``handle_<route>`` method per route of `server.match_route`; state and storage come from `LocalHub`."""

    # -- internals: JSON shapes -----------------------------------------------------------------

    def _tree_item(self, path: str, entry: TreeEntry) -> dict[str, Any]:
        item: dict[str, Any] = {"type": "file", "oid": entry.blob_oid, "size": entry.size, "path": path}
        if entry.is_lfs:
            item["lfs"] = {"oid": entry.lfs_sha256, "size": entry.size, "pointerSize": entry.pointer_size}
        return item

    @staticmethod
    def _folder_item(path: str, tree: Mapping[str, TreeEntry]) -> dict[str, Any]:
        digest = hashlib.sha1(path.encode())
        for child in sorted(p for p in tree if p.startswith(path + "/")):
            digest.update(f"{child}\0{tree[child].blob_oid}\n".encode())
        return {"type": "directory", "oid": digest.hexdigest(), "size": 0, "path": path}

    def _repo_info_json(self, repo: Repo, commit: Commit, with_blobs: bool) -> dict[str, Any]:
        siblings = []
        for path in sorted(commit.tree):
            sibling: dict[str, Any] = {"rfilename": path}
            entry = commit.tree[path]
            if with_blobs:
                sibling.update(size=entry.size, blobId=entry.blob_oid)
                if entry.is_lfs:
                    sibling["lfs"] = {
                        "size": entry.size,
                        "sha256": entry.lfs_sha256,
                        "pointerSize": entry.pointer_size,
                    }
            siblings.append(sibling)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.id,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        if repo.repo_type == "model":
            info["modelId"] = repo.repo_id
        return info

    # -- route handlers: account and repos -----------------------------------------------------

    def handle_whoami(self, request: Request) -> Response:
        return Response.json(
            {
                "type": "user",
                "id": hashlib.sha1(self.username.encode()).hexdigest()[:24],
                "name": self.username,
                "fullname": "Local Test User",
                "isPro": False,
                "canPay": False,
                "emailVerified": True,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "local-test", "role": "write"}},
            }
        )

    def handle_create_repo(self, request: Request) -> Response:
        payload = request.json()
        name = payload.get("name")
        if not isinstance(name, str) or not name:
            raise HubError(400, "create_repo needs a 'name'")
        namespace = payload.get("organization") or self.username
        repo_type = payload.get("type") or "model"
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        with self._lock:
            repo = self._new_repo(repo_type, f"{namespace}/{name}", private)
        return Response.json(
            {"url": self._repo_url(repo.repo_type, repo.repo_id), "name": repo.repo_id, "id": repo.repo_id}
        )

    def handle_delete_repo(self, request: Request) -> Response:
        payload = request.json()
        namespace = payload.get("organization") or self.username
        repo_type = payload.get("type") or "model"
        repo_id = f"{namespace}/{payload.get('name')}"
        with self._lock:
            repo = self._writable_repo(request, repo_type, repo_id)
            del self._repos[(repo_type, repo_id)]
        shutil.rmtree(repo.storage, ignore_errors=True)
        return Response.json({})

    def handle_validate_yaml(self, request: Request) -> Response:
        content = request.json().get("content", "")
        if isinstance(content, str) and content.startswith("---") and "\n---" not in content[3:]:
            return Response.json(
                {"errors": [{"message": "Metadata block is not closed by '---'"}], "warnings": []}, status=400
            )
        return Response.json({"errors": [], "warnings": []})

    def handle_repo_info(self, request: Request, repo_type: str, repo_id: str, revision: str | None) -> Response:
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            commit = repo.commits[self._resolve(repo, revision or "main")]
            return Response.json(self._repo_info_json(repo, commit, with_blobs=request.flag("blobs")))

    # -- route handlers: listing ---------------------------------------------------------------

    def handle_tree(self, request: Request, repo_type: str, repo_id: str, revision: str, path: str) -> Response:
        path = path.strip("/")
        recursive = request.flag("recursive")
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            commit_id = self._resolve(repo, revision)
            tree = repo.commits[commit_id].tree
        prefix = f"{path}/" if path else ""
        below = sorted(p for p in tree if p.startswith(prefix))
        if path and not below:
            raise HubError(
                404,
                f"Path {path} not found at {revision}",
                error_code="EntryNotFound",
                headers={"X-Repo-Commit": commit_id},
            )
        folders: set[str] = set()
        files: list[str] = []
        for file_path in below:
            relative = file_path[len(prefix) :]
            parts = relative.split("/")
            if recursive:
                folders.update(prefix + "/".join(parts[:i]) for i in range(1, len(parts)))
                files.append(file_path)
            elif len(parts) > 1:
                folders.add(prefix + parts[0])
            else:
                files.append(file_path)
        items = [self._folder_item(folder, tree) for folder in sorted(folders)]
        items += [self._tree_item(file_path, tree[file_path]) for file_path in files]
        return Response.json(items)

    def handle_paths_info(self, request: Request, repo_type: str, repo_id: str, revision: str) -> Response:
        content_type = request.headers.get("Content-Type") or ""
        if "json" in content_type:
            paths = request.json().get("paths", [])
        else:
            paths = parse_qs(request.body.decode(), keep_blank_values=True).get("paths", [])
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            tree = repo.commits[self._resolve(repo, revision)].tree
        items = []
        for path in paths:
            path = path.strip("/")
            if path in tree:
                items.append(self._tree_item(path, tree[path]))
            elif any(p.startswith(path + "/") for p in tree):
                items.append(self._folder_item(path, tree))
        return Response.json(items)

    def handle_refs(self, request: Request, repo_type: str, repo_id: str) -> Response:
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            branches = [
                {"name": n, "ref": f"refs/heads/{n}", "targetCommit": c} for n, c in sorted(repo.branches.items())
            ]
            tags = [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": c} for n, c in sorted(repo.tags.items())]
        data: dict[str, Any] = {"branches": branches, "converts": [], "tags": tags}
        if request.flag("include_prs"):
            data["pullRequests"] = []
        return Response.json(data)

    def handle_commits(self, request: Request, repo_type: str, repo_id: str, revision: str) -> Response:
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            history = repo.history(self._resolve(repo, revision))
        items = [
            {
                "id": commit.id,
                "title": commit.title,
                "message": commit.message,
                "date": commit.date,
                "authors": [{"user": self.username, "avatar": None}],
            }
            for commit in history
        ]
        return Response.json(items)

    # -- route handlers: branches and tags -----------------------------------------------------

    def handle_create_branch(self, request: Request, repo_type: str, repo_id: str, name: str) -> Response:
        starting_point = request.json().get("startingPoint")
        validate_ref_name(name)
        with self._lock:
            repo = self._writable_repo(request, repo_type, repo_id)
            if name in repo.branches:
                raise HubError(409, f"Reference already exists: refs/heads/{name}")
            repo.branches[name] = self._resolve(repo, starting_point or "main")
        return Response.json({})

    def handle_delete_branch(self, request: Request, repo_type: str, repo_id: str, name: str) -> Response:
        with self._lock:
            repo = self._writable_repo(request, repo_type, repo_id)
            if name == "main":
                raise HubError(403, "The default branch cannot be deleted")
            if name not in repo.branches:
                raise HubError(404, f"Invalid rev id: {name}", error_code="RevisionNotFound")
            del repo.branches[name]
        return Response.json({})

    def handle_create_tag(self, request: Request, repo_type: str, repo_id: str, revision: str) -> Response:
        tag = request.json().get("tag")
        if not isinstance(tag, str) or not tag:
            raise HubError(400, "create_tag needs a 'tag'")
        validate_ref_name(tag)
        with self._lock:
            repo = self._writable_repo(request, repo_type, repo_id)
            if tag in repo.tags:
                raise HubError(409, f"Tag already exists: {tag}")
            repo.tags[tag] = self._resolve(repo, revision)
        return Response.json({})

    def handle_delete_tag(self, request: Request, repo_type: str, repo_id: str, name: str) -> Response:
        with self._lock:
            repo = self._writable_repo(request, repo_type, repo_id)
            if repo.tags.pop(name, None) is None:
                raise HubError(404, f"Invalid rev id: {name}", error_code="RevisionNotFound")
        return Response.json({})

    # -- route handlers: uploads ---------------------------------------------------------------

    def handle_preupload(self, request: Request, repo_type: str, repo_id: str, revision: str) -> Response:
        if request.flag("create_pr"):
            raise HubError(400, "Pull requests (create_pr=True) are not supported by the local test hub")
        files = request.json().get("files")
        if not isinstance(files, list):
            raise HubError(400, "preupload needs a 'files' list")
        with self._lock:
            repo = self._writable_repo(request, repo_type, repo_id)
            tree = repo.commits[self._resolve(repo, revision)].tree
            lfs_patterns = self._lfs_patterns(repo, tree)
        answers = []
        for item in files:
            path = validate_path(item.get("path"))
            sample = base64.b64decode(item.get("sample") or "")
            mode = upload_mode(path, int(item.get("size") or 0), sample, lfs_patterns)
            existing = tree.get(path)
            answers.append(
                {"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": existing.etag if existing else None}
            )
        return Response.json({"files": answers, "commitOid": self._resolve(repo, revision)})

    def _lfs_patterns(self, repo: Repo, tree: Mapping[str, TreeEntry]) -> list[str]:
        entry = tree.get(".gitattributes")
        if entry is None:
            return []
        text = self._blob_path(repo, entry).read_text(errors="replace")
        return [line.split()[0] for line in text.splitlines() if "filter=lfs" in line and line.split()]

    def handle_lfs_batch(self, request: Request, repo_type: str, repo_id: str) -> Response:
        payload = request.json()
        if payload.get("operation") != "upload":
            raise HubError(400, f"Only the 'upload' LFS operation is supported, not {payload.get('operation')!r}")
        with self._lock:
            repo = self._writable_repo(request, repo_type, repo_id)
        objects = []
        for obj in payload.get("objects", []):
            oid, size = str(obj.get("oid")), obj.get("size")
            if not SHA256_HEX.match(oid) or not isinstance(size, int) or size < 0:
                objects.append(
                    {
                        "oid": oid,
                        "size": size if isinstance(size, int) else 0,
                        "error": {"code": 422, "message": "Invalid oid or size"},
                    }
                )
                continue
            stored = repo.storage / "lfs" / oid
            if stored.exists() and stored.stat().st_size == size:
                objects.append({"oid": oid, "size": size})  # already present: no upload action
                continue
            signature = self._sign(repo_type, repo_id, oid, size)
            href = f"{self.url}/__lfs_upload/{repo_type}/{quote(repo_id)}/{oid}?size={size}&sig={signature}"
            objects.append(
                {
                    "oid": oid,
                    "size": size,
                    "authenticated": True,
                    "actions": {"upload": {"href": href, "expires_in": 3600}},
                }
            )
        return Response.json(
            {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
            content_type="application/vnd.git-lfs+json",
        )

    def _sign(self, repo_type: str, repo_id: str, oid: str, size: int) -> str:
        message = f"{repo_type}/{repo_id}/{oid}/{size}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def handle_lfs_upload(self, request: Request, repo_type: str, repo_id: str, oid: str) -> Response:
        size_text, signature = request.query.get("size", ""), request.query.get("sig", "")
        if not size_text.isdigit() or not hmac.compare_digest(
            signature, self._sign(repo_type, repo_id, oid, int(size_text))
        ):
            raise HubError(403, "Invalid or missing LFS upload signature")
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
        size = int(size_text)
        incoming = repo.storage / "incoming" / f"{oid}.{secrets.token_hex(4)}"
        digest, received = hashlib.sha256(), 0
        try:
            with open(incoming, "wb") as file:
                for chunk in request.handler.iter_body():
                    digest.update(chunk)
                    received += len(chunk)
                    file.write(chunk)
            if received != size or digest.hexdigest() != oid:
                raise HubError(
                    400,
                    f"LFS upload rejected: got {received} bytes with sha256 {digest.hexdigest()}, expected {size} "
                    f"bytes with sha256 {oid}",
                )
            os.replace(incoming, repo.storage / "lfs" / oid)
        finally:
            incoming.unlink(missing_ok=True)
        return Response(status=200, headers={"ETag": f'"{oid}"'})

    def handle_commit(self, request: Request, repo_type: str, repo_id: str, revision: str) -> Response:
        if request.flag("create_pr"):
            raise HubError(400, "Pull requests (create_pr=True) are not supported by the local test hub")
        header, operations = parse_commit_payload(request.body)
        with self._lock:
            repo = self._writable_repo(request, repo_type, repo_id)
            if revision not in repo.branches:
                if repo.resolve(revision) is not None:
                    raise HubError(400, f"Can only commit to a branch, not to {revision}")
                raise HubError(404, f"Invalid rev id: {revision}", error_code="RevisionNotFound")
            head = repo.branches[revision]
            parent = header.get("parentCommit")
            if parent and not head.startswith(parent):
                raise HubError(
                    412,
                    f"A commit has happened since {parent}: {revision} is at {head}. Please refresh and try again.",
                )
            tree = dict(repo.commits[head].tree)
            for key, value in operations:
                self._apply_operation(repo, tree, key, value)
            commit = self._make_commit(
                head, str(header.get("summary") or ""), str(header.get("description") or ""), tree
            )
            repo.commits[commit.id] = commit
            repo.branches[revision] = commit.id  # the only step that makes the commit visible
        return Response.json(
            {
                "success": True,
                "commitOid": commit.id,
                "commitUrl": f"{self._repo_url(repo_type, repo_id)}/commit/{commit.id}",
                "commitMessage": commit.title,
                "hookOutput": "",
                "pullRequestUrl": None,
            }
        )

    def _apply_operation(self, repo: Repo, tree: dict[str, TreeEntry], key: str, value: dict[str, Any]) -> None:
        path = validate_path(value.get("path"), allow_folder=(key == "deletedFolder"))
        if key == "file":
            if value.get("encoding", "base64") != "base64":
                raise HubError(400, f"Unsupported encoding {value.get('encoding')!r} for {path}")
            tree[path] = self._store_regular(repo, base64.b64decode(value.get("content") or ""))
        elif key == "lfsFile":
            if value.get("algo", "sha256") != "sha256":
                raise HubError(400, f"Unsupported LFS algo {value.get('algo')!r}")
            tree[path] = self._lfs_entry(repo, str(value.get("oid")), value.get("size"))
        elif key == "deletedFile":
            if tree.pop(path, None) is None:
                raise HubError(404, f"A file with this name doesn't exist: {path}", error_code="EntryNotFound")
        elif key == "deletedFolder":
            prefix = path.rstrip("/") + "/"
            doomed = [p for p in tree if p.startswith(prefix)]
            if not doomed:
                raise HubError(404, f"A folder with this name doesn't exist: {path}", error_code="EntryNotFound")
            for doomed_path in doomed:
                del tree[doomed_path]
        else:
            raise HubError(400, f"Unknown commit operation {key!r}")

    # -- route handlers: downloads -------------------------------------------------------------

    def handle_resolve(self, request: Request, repo_type: str, repo_id: str, revision: str, path: str) -> Response:
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            commit_id = self._resolve(repo, revision)
            entry = repo.commits[commit_id].tree.get(path)
        if entry is None:
            raise HubError(
                404,
                f"Entry not found: {path} at {revision}",
                error_code="EntryNotFound",
                headers={"X-Repo-Commit": commit_id},
            )
        headers = {
            "Content-Type": "application/octet-stream",
            "X-Repo-Commit": commit_id,
            "ETag": f'"{entry.etag}"',
            "Accept-Ranges": "bytes",
        }
        if entry.is_lfs:
            headers["X-Linked-Etag"] = f'"{entry.lfs_sha256}"'
            headers["X-Linked-Size"] = str(entry.size)
        start, length, status = parse_range(request.headers.get("Range"), entry.size)
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{entry.size}"
        return Response(
            status=status,
            headers=headers,
            file_path=self._blob_path(repo, entry),
            file_start=start,
            file_length=length,
        )
