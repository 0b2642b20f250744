// Sign in (`form#login`; Enter submits), then back to where the person was (`?next=`), whose
// page restores what they had selected.

import { esc, explain, get, header, post, safeNext, signIn } from "./api.js";

header();
const params = new URLSearchParams(location.search);
const next = safeNext(params.get("next"));
const reason = sessionStorage.getItem("ticketing.login-reason");
if (reason) {
  document.getElementById("reason").innerHTML = `<p class="notice warn">${esc(reason)}</p>`;
  sessionStorage.removeItem("ticketing.login-reason");
}
document.getElementById("register-link").href = `/register?next=${encodeURIComponent(next)}`;

document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  const error = document.getElementById("error");
  error.innerHTML = "";
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const { body } = await post("/api/auth/login", { email: form.elements.namedItem("email").value.trim(), password: form.elements.namedItem("password").value }, { auth: false });
    signIn(body.access_token, null, body.refresh_token);
    try {
      const profile = await get("/api/users/profile");
      signIn(body.access_token, profile.name);
    } catch {
      /* the name is only for the header */
    }
    location.assign(next);
  } catch (err) {
    button.disabled = false;
    const text = err.status === 401 ? "Wrong email or password." : explain(err);
    error.innerHTML = `<p class="notice bad">${esc(text)}</p>`;
  }
});
