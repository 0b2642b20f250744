// Sign up, then sign in at once (login works as soon as register answered) and go on.

import { esc, explain, header, post, safeNext, signIn } from "./api.js";

header();
const next = safeNext(new URLSearchParams(location.search).get("next"));
document.getElementById("login-link").href = `/login?next=${encodeURIComponent(next)}`;

document.getElementById("register").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  const error = document.getElementById("error");
  error.innerHTML = "";
  const fields = form.elements;
  const name = fields.namedItem("name").value.trim();
  const email = fields.namedItem("email").value.trim();
  const password = fields.namedItem("password").value;
  if (password.length < 8) {
    error.innerHTML = `<p class="notice bad">The password needs at least 8 characters.</p>`;
    return;
  }
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    await post("/api/auth/register", { name, email, password }, { auth: false });
    const { body } = await post("/api/auth/login", { email, password }, { auth: false });
    signIn(body.access_token, name, body.refresh_token);
    location.assign(next);
  } catch (err) {
    button.disabled = false;
    let text = explain(err);
    if (err.status === 409) text = "An account with this email exists already. Sign in instead.";
    if (err.status === 422 && err.body.errors) text = err.body.errors.map((f) => `${f.field}: ${f.message}`).join("; ");
    error.innerHTML = `<p class="notice bad">${esc(text)}</p>`;
  }
});
